Feature: httpbin benchmark (the same 10 checks as ../suite/httpbin.scenario.md)

  Scenario: query 1
    When I send GET "/get?n=1"
    Then the status is 200
    And the JSON at "args.n" is "1"

  Scenario: query 2
    When I send GET "/get?n=2"
    Then the status is 200
    And the JSON at "args.n" is "2"

  Scenario: query 3
    When I send GET "/get?n=3"
    Then the status is 200
    And the JSON at "args.n" is "3"

  Scenario: query 4
    When I send GET "/get?n=4"
    Then the status is 200
    And the JSON at "args.n" is "4"

  Scenario: query 5
    When I send GET "/get?n=5"
    Then the status is 200
    And the JSON at "args.n" is "5"

  Scenario: post 6
    When I send POST "/post" with JSON '{"k":6}'
    Then the status is 200
    And the JSON number at "json.k" is 6

  Scenario: post 7
    When I send POST "/post" with JSON '{"k":7}'
    Then the status is 200
    And the JSON number at "json.k" is 7

  Scenario: post 8
    When I send POST "/post" with JSON '{"k":8}'
    Then the status is 200
    And the JSON number at "json.k" is 8

  Scenario: teapot
    When I send GET "/status/418"
    Then the status is 418

  Scenario: headers
    When I send GET "/headers" with header "X-Bench" = "1"
    Then the status is 200
    And the JSON at "headers.X-Bench" is "1"
