"""Every template helper, through a real render (Pinpoint's examples where it gives them)."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from lodestar.core.template_context import RecipientContext
from lodestar.core.template_helpers import HELPER_NAMES
from lodestar.core.templates import Rendered, RenderFailure, parse_template, render

NOW = 1_600_516_800_000  # 2020-09-19T12:00:00Z, a Saturday
DATA = {
    "User": {"UserAttributes": {"FirstName": ["Jane"], "UserAge": ["25"], "LastName": ["Alejandro"],
                                "StartDate": ["09/19/2020"], "FavoriteColors": ["red", "blue"]}},
    "Location": {"City": "Los Angeles", "Country": "US"},
    "Attributes": {"description": ["my first post"], "favorite_colors": ["blue", "red", "green"],
                   "IsUserSubscribed": ["true"], "interests": ["<h1>Art</h1>"]},
    "Metrics": {"n": 7.0},
}


def _render(source: str) -> Rendered | RenderFailure:
    template = parse_template("SMS", {"Body": source})
    return render(template, RecipientContext(DATA), None, NOW)  # type: ignore[arg-type]


def _out(source: str) -> str:
    result = _render(source)
    assert isinstance(result, Rendered), result
    return result.parts["Body"]


def _fails(source: str) -> str:
    result = _render(source)
    assert isinstance(result, RenderFailure), result
    return result.reason


CASES = [
    # built in
    ("{{#each User.UserAttributes.FavoriteColors}}<li>{{this}}</li>{{/each}}",
     "<li>red</li><li>blue</li>"),
    ("{{#if User.UserAttributes.FirstName.[0]}}Hello {{User.UserAttributes.FirstName.[0]}},"
     "{{else}}Hello,{{/if}}", "Hello Jane,"),
    ("{{#unless Nope}}none{{else}}some{{/unless}}|{{#unless Location.City}}x{{else}}y{{/unless}}",
     "none|y"),
    ("{{#with Location}}{{City}}{{/with}}", "Los Angeles"),
    ("{{lookup User.UserAttributes.FavoriteColors 1}}", "blue"),
    # conditionals
    ('{{#and (eq Location.City "Los Angeles") (eq Location.Country "US")}}both{{else}}no{{/and}}',
     "both"),
    ('{{and 1 0 yes="y" no="n"}}{{and 1 "a" yes="y" no="n"}}', "ny"),
    ('{{#eq User.UserAttributes.FavoriteColors.[0] "red"}}red{{else}}other{{/eq}}', "red"),
    ('{{eq 1 "1.0"}} {{eq "a" "b"}} {{eq "a" "a" yes="same"}}', "true false same"),
    ('{{#gt User.UserAttributes.UserAge.[0] "17"}}old{{else}}young{{/gt}}', "old"),
    ('{{gt "9" "10"}} {{gt "b" "a"}}', "false true"),
    ('{{#gte User.UserAttributes.UserAge.[0] "25"}}y{{else}}n{{/gte}}', "y"),
    ('{{#lt User.UserAttributes.UserAge.[0] "18"}}y{{else}}n{{/lt}}', "n"),
    ('{{#lte User.UserAttributes.UserAge.[0] "25"}}y{{else}}n{{/lte}}', "y"),
    ('{{#neq User.UserAttributes.FavoriteColors.[0] "red"}}y{{else}}n{{/neq}}', "n"),
    ('{{ne 1 2}}', "true"),
    ('{{#not (eq User.UserAttributes.FavoriteColors.[0] "red")}}y{{else}}n{{/not}}', "n"),
    ('{{not (eq User.UserAttributes.FavoriteColors.[0] "red")}}', "false"),
    ('{{not Nope yes="missing"}}', "missing"),
    ('{{#or (eq Location.City "Los Angeles") (eq Location.City "Seattle")}}west{{else}}no{{/or}}',
     "west"),
    ('{{or 0 "" yes="y" no="n"}}', "n"),
    ('{{#inArray User.UserAttributes.FavoriteColors "blue"}}y{{else}}n{{/inArray}}'
     '{{inArray Attributes.favorite_colors "pink" yes="y" no="n"}}', "yn"),
    # strings
    ("{{abbreviate User.UserAttributes.LastName.[0] 6}}", "Ale..."),
    ("{{abbreviate User.UserAttributes.LastName.[0] 20}}", "Alejandro"),
    ("{{capitalize Attributes.description.[0]}}", "My First Post"),
    ('{{capitalize "hELLO wORLD" fully=true}}', "Hello World"),
    ("{{capitalizeFirst Attributes.description.[0]}}", "My first post"),
    ("[{{center Location.City size=19}}]", "[    Los Angeles    ]"),
    ('[{{center "ab" size=5 pad="*"}}]', "[*ab**]"),
    ('{{cut Location.City "e"}}', "Los Angls"),
    ("{{cut Location.City}}", "LosAngeles"),
    ('{{dateFormat User.UserAttributes.StartDate.[0] inputFormat="MM/dd/yyyy" '
     'outputFormat="full" tz=America/Los_Angeles}}', "Saturday, September 19, 2020"),
    ('{{dateFormat "2020-09-19T07:05:09Z" "long"}}', "September 19, 2020"),
    ('{{dateFormat "2020-09-19"}}', "Sep 19, 2020"),
    ('{{dateFormat "2020-09-19T07:05:09Z" outputFormat="short" tz="Asia/Tokyo"}}', "9/19/20"),
    ('{{dateFormat "2020-09-19T07:05:09.123Z" '
     "outputFormat=\"yyyy-MM-dd'T'HH:mm:ss.SSS EEE a hh K k XXX Z z D\" tz=\"Asia/Tokyo\"}}",
     "2020-09-19T16:05:09.123 Sat PM 04 4 16 +09:00 +0900 JST 263"),
    ('{{dateFormat "19 Sep 2020 4:05 PM" inputFormat="d MMM yyyy h:mm a" outputFormat="HH:mm"}}',
     "16:05"),
    ("{{inflect 3 \"apple\" \"apples\" includeCount=false}}", "apples"),
    ("{{inflect 3 \"apple\" \"apples\" includeCount=true}} {{inflect 1 \"apple\" \"apples\"}}",
     "3 apples apple"),
    ('{{join Attributes.favorite_colors ", "}}', "blue, red, green"),
    ('{{join Attributes.favorite_colors "/" prefix="<" suffix=">"}}', "<blue/red/green>"),
    ("[{{ljust Location.City 15}}]", "[Los Angeles    ]"),
    ('[{{ljust "a" 3 pad="."}}]', "[a..]"),
    ("[{{rjust Location.City 15}}]", "[    Los Angeles]"),
    ("{{lower User.UserAttributes.LastName.[0]}} {{lowercase \"AB\"}}", "alejandro ab"),
    ("{{upper User.UserAttributes.LastName.[0]}} {{uppercase \"ab\"}}", "ALEJANDRO AB"),
    ('{{now "medium" tz=America/Los_Angeles}}', "Sep 19, 2020"),
    ("{{now}}", "Sep 19, 2020"),
    ('{{now "HH:mm" tz="+02:00"}} {{now "full"}}', "14:00 Saturday, September 19, 2020"),
    ("{{ordinalize User.UserAttributes.UserAge.[0]}} {{ordinalize 1}} {{ordinalize 2}} "
     "{{ordinalize 3}} {{ordinalize 11}} {{ordinalize 12}} {{ordinalize 13}} {{ordinalize 101}}",
     "25th 1st 2nd 3rd 11th 12th 13th 101st"),
    ('{{replace Location.City " " "_"}}', "Los_Angeles"),
    ("{{slugify Location.City}} {{slugify \" Hello, World! \"}}", "los-angeles hello-world"),
    ("{{stripTags Attributes.interests.[0]}}", "Art"),
    ("{{substring Location.City 4 9}} {{substring Location.City 4}} [{{substring \"ab\" 1 9}}]",
     "Angel Angeles [b]"),
    ("{{yesno Attributes.IsUserSubscribed}} {{yesno \"false\"}} {{yesno Nope}}", "yes no maybe"),
    ('{{yesno true yes="Y" no="N" maybe="M"}}', "Y"),
    ('[{{trim "  x  "}}]', "[x]"),
    ('{{truncate Location.City 3}} {{truncate Location.City 6 "…"}} {{truncate "ab" 5}}',
     "Los Los A… ab"),
    ('{{urlEncode "a b&c=d/é~"}}', "a%20b%26c%3Dd%2F%C3%A9~"),
    ("{{length Attributes.favorite_colors}} {{length Location.City}}", "3 11"),
    ('{{default Nope "fallback"}} {{default Location.City "x"}}', "fallback Los Angeles"),
    # math and encodings
    ("{{add 5 2.3}}", "7.3"),
    ("{{subtract 5 2.3}}", "2.7"),
    ("{{multiply 5 2.3}}", "11.5"),
    ("{{divide 5 2.3}}", "2.17391304"),
    ("{{modulo 7 2}} {{modulo -7 2}}", "1 -1"),
    ("{{ceiling 5.23}} {{floor 5.23}} {{round 19.21}} {{round 19.5}} {{round -1.5}}",
     "6 5 19 20 -1"),
    ('{{add Metrics.n "1"}} {{add User.UserAttributes.UserAge.[0] 1}}', "8 26"),
    ('{{math 1 "+" 2}} {{math 4 "-" 6}} {{math 2 "*" 3}} {{math 7 "/" 2}} {{math 10 "%" 3}}',
     "3 -2 6 3.5 1"),
    # Pinpoint's page pairs "Hello World" with SGVsbG8gd29ybGQ=, which is "Hello world"
    ('{{encode64 "Hello World"}}', "SGVsbG8gV29ybGQ="),
    ('{{decode64 "SGVsbG8gd29ybGQ="}}', "Hello world"),
    ('{{md5 "Hello World"}}', "b10a8db164e0754105b7a99be72e3fe5"),
    ('{{sha256 "Hello World"}}', hashlib.sha256(b"Hello World").hexdigest()),
    ('{{sha512 "Hello World"}}', hashlib.sha512(b"Hello World").hexdigest()),
    ("{{round (divide (add 1 2) 2)}}", "2"),
    ('{{capitalizeFirst (lower "JANE")}}', "Jane"),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_helper(source: str, expected: str) -> None:
    assert _out(source) == expected


def test_every_helper_has_a_case() -> None:
    used = {name for name in HELPER_NAMES if any(name in source for source, _ in CASES)}
    assert used | {"uuid"} == set(HELPER_NAMES)


def test_uuid_is_a_v4_uuid_and_differs_per_call() -> None:
    first, second = _out("{{uuid}} {{uuid}}").split()
    assert uuid.UUID(first).version == 4 and first != second


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{abbreviate Location.City 2}}", "abbreviate"),
        ('{{add "x" 1}}', "not a number"),
        ("{{divide 1 0}}", "division by zero"),
        ("{{modulo 1 0}}", "division by zero"),
        ('{{math 1 "^" 2}}', "unknown operator"),
        ('{{decode64 "%%%"}}', "Base64"),
        ('{{dateFormat "yesterday"}}', "ISO-8601"),
        ('{{dateFormat "2020-01-01" tz="Mars/Base"}}', "unknown time zone"),
        ('{{dateFormat "2020-01-01" outputFormat="yyyy-QQ"}}', "unsupported pattern letter"),
        ('{{dateFormat "1/2" inputFormat="yyyy"}}', "does not match"),
        ('{{dateFormat "2020-02-31" inputFormat="yyyy-MM-dd"}}', "not a valid date"),
        ("{{dateFormat Nope}}", "no date"),
        ("{{ordinalize 1.5}}", "whole number"),
        ('{{center "a" size=3 pad="ab"}}', "one character"),
        ('{{substring "abc" 2 1}}', "before"),
        ('{{eq 1}}', "takes 2"),
        ('{{join "a"}}', "separator"),
        ('{{truncate "abcdef" 2 "..."}}', "suffix"),
        ('{{default "a"}}', "fallback"),
        ("{{uuid 1}}", "takes 0"),
    ],
)
def test_helper_errors(source: str, fragment: str) -> None:
    assert fragment in _fails(source)
