"""unique: ids as uuid.uuid4() makes them, without its system call."""

import re
import uuid

from volworker import unique

CANONICAL = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)


def test_uuid4_text_is_a_canonical_random_uuid():
    for _ in range(2000):
        text = unique.uuid4_text()
        assert CANONICAL.match(text), text
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_hex32_is_32_hex_digits():
    for _ in range(2000):
        value = unique.hex32()
        assert re.fullmatch(r"[0-9a-f]{32}", value), value


def test_ids_do_not_repeat():
    made = [unique.uuid4_text() for _ in range(50_000)]
    made += [unique.hex32() for _ in range(50_000)]
    assert len(set(made)) == len(made)


def test_version_and_variant_bits_do_not_leak_other_bits():
    # All random bits other than the fixed ones vary across ids.
    ors = ands = None
    for _ in range(2000):
        value = uuid.UUID(unique.uuid4_text()).int
        ors = value if ors is None else ors | value
        ands = value if ands is None else ands & value
    fixed = (0xF << 76) | (0x3 << 62)
    assert ors | fixed == (1 << 128) - 1
    assert ands & ~fixed == 0
