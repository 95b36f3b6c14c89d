"""The same documents give the same bytes: every exchange of the corpus (documents.py) answers with
the status, contract headers and body recorded in digests.json."""

from __future__ import annotations

import json

import pytest

from service import create_app

from .documents import exchanges
from .record import DIGESTS, pinned_linalg, run

RECORDED = json.loads(DIGESTS.read_text())
EXCHANGES = {e["name"]: e for e in exchanges()}


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


def test_the_corpus_is_the_recorded_one():
    assert set(EXCHANGES) == set(RECORDED), "documents.py and digests.json differ: record again only on purpose"
    assert len(EXCHANGES) >= 250


@pytest.mark.parametrize("name", sorted(EXCHANGES))
def test_same_document_same_bytes(client, name):
    with pinned_linalg():
        assert run(client, EXCHANGES[name]) == RECORDED[name]
