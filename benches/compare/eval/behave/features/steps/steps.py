"""behave steps equivalent to lightsout's built-in HTTP steps, for the eval benchmark.

Run: BASE_URL=http://127.0.0.1:PORT behave -q benches/compare/eval/behave
"""
import json
import os

import requests
from behave import given, then, when  # noqa: F401

BASE = os.environ.get("BASE_URL", "http://127.0.0.1:8080")
SESSION = requests.Session()
SESSION.trust_env = False


def _get(data, dotted):
    for part in dotted.split("."):
        data = data[part]
    return data


@when('I send GET "{path}" with header "{name}" = "{value}"')
def send_get_header(context, path, name, value):
    context.response = SESSION.get(BASE + path, headers={name: value}, allow_redirects=False)


@when('I send GET "{path}"')
def send_get(context, path):
    context.response = SESSION.get(BASE + path, allow_redirects=False)


@when("I send POST \"{path}\" with JSON '{body}'")
def send_post(context, path, body):
    context.response = SESSION.post(
        BASE + path, data=body, headers={"Content-Type": "application/json"}, allow_redirects=False
    )


@then("the status is {status:d}")
def status_is(context, status):
    assert context.response.status_code == status, context.response.status_code


@then('the JSON at "{path}" is "{value}"')
def json_is(context, path, value):
    assert _get(context.response.json(), path) == value


@then('the JSON number at "{path}" is {value:d}')
def json_number_is(context, path, value):
    assert _get(json.loads(context.response.text), path) == value
