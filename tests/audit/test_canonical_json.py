"""The fast canonical-JSON path must give byte-for-byte the output of the RFC 8785 reference."""

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.chain import canonical_json

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.text(),
    st.text(alphabet=st.characters(max_codepoint=0x2F)),  # control characters and quotes
    st.floats(allow_nan=False, allow_infinity=False),
)
keys = st.one_of(st.text(max_size=8), st.text(alphabet="abcXYZ_0", max_size=8))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=400)
@given(st.dictionaries(keys, documents, max_size=6))
def test_fast_path_matches_the_reference_encoder(document: dict[str, Any]) -> None:
    try:
        expected = rfc8785.dumps(document)
    except (rfc8785.IntegerDomainError, rfc8785.FloatDomainError, UnicodeEncodeError):
        return  # values JCS itself refuses; events never carry them
    assert canonical_json(document) == expected


def test_chinese_text_control_characters_and_nesting_encode_as_jcs() -> None:
    document: dict[str, Any] = {
        "b": '税收收入\u0007\n"\\',
        "a": [1, True, None, {"z": "人口", "y": -(2**53 - 1)}],
        "\u00e9": "non-ASCII key takes the reference path",
    }
    assert canonical_json(document) == rfc8785.dumps(document)
