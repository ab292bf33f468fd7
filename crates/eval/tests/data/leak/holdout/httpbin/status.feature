# canary: lightsout-holdout-httpbin-5e02d4a8
@status
Feature: httpbin status codes, redirects and authentication
  Satisfies: HB-3

  Background:
    Given the service is running

  @critical
  Scenario Outline: any status code can be requested
    When I send `GET /status/<code>`
    Then the status is <code>

    Examples:
      | code |
      | 200  |
      | 204  |
      | 404  |
      | 503  |

  Scenario: the teapot says so
    When I send `GET /status/418`
    Then the status is 4xx
    And the body contains `teapot`
    And the header `x-more-info` contains `rfc2324`

  Scenario: a redirect points at /get
    Satisfies: HB-4
    When I send `GET /redirect/1`
    Then the status is 302
    And the header `Location` is `/get`

  Scenario: basic auth accepts the right credentials and refuses others
    Satisfies: HB-6
    When I send `GET /basic-auth/ann/s3cret` with header `Authorization: Basic YW5uOnMzY3JldA==`
    Then the status is 200
    And the JSON at `$.authenticated` is true
    And the JSON at `$.user` is "ann"
    When I send `GET /basic-auth/ann/s3cret` with header `Authorization: Basic YW5uOndyb25n`
    Then the status is 401
    And the header `WWW-Authenticate` contains `Basic`

  Scenario: a bearer token is required
    Satisfies: HB-6
    When I send `GET /bearer`
    Then the status is 401
    When I send `GET /bearer` with header `Authorization: Bearer t0k3n`
    Then the status is 200
    And the JSON at `$.token` is "t0k3n"
