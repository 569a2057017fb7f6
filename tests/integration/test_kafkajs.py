"""kafkajs (Node.js) against the real broker: the fourth client family.

The security suites (test_tls.py, test_sasl.py) run kafkajs over SSL and
SASL_SSL; this file proves the plain path the others build on.
"""

from __future__ import annotations

import pytest

import kafkajs

pytestmark = pytest.mark.skipif(not kafkajs.available(), reason="node/kafkajs not installed (scripts/test.sh installs them)")


def test_kafkajs_produces_and_consumes_in_a_group_over_plaintext(broker, topic_name):
    result = kafkajs.round_trip(broker.bootstrap, topic_name, count=25)
    assert result["ok"], result
    assert result["consumed"] == result["produced"], result
    assert len(result["produced"]) == 25
