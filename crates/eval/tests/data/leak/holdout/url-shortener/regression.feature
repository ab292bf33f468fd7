# canary: ls-canary-url-shortener-5d1c9a7e
@regression
Feature: behaviour that must never regress once shipped
  Satisfies: REQ-1

  Background:
    Given the service is running

  @satisfies:REQ-1
  Scenario: the health probe keeps answering ok
    When I send `GET /healthz`
    Then the status is 200
    And the JSON at `$.status` is "ok"

  @satisfies:REQ-2
  Scenario: created links keep answering 201 with a Location
    When I send `POST /links` with JSON `{"url":"https://example.com/regression"}`
    Then the status is 201
    And the header `Location` contains `/links/`
