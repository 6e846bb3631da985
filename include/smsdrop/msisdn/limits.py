"""Constants of phonenumbers.phonenumberutil, private there, so restated here.

One home for them because parsing, the compiled metadata and the column kernels all size
their work by the same limits.
"""

from __future__ import annotations

_MIN_NSN = 2
_MAX_NSN = 17
_MAX_INPUT = 250
_NON_GEO = "001"

# _test_number_length results (phonenumbers.ValidationResult, without the enum import).
_LEN_POSSIBLE, _LEN_LOCAL, _LEN_SHORT, _LEN_INVALID, _LEN_LONG = range(5)
# Size of the tables indexed by a string's length: every input is at most _MAX_INPUT long.
_LEN_TABLE_SIZE = _MAX_INPUT + 1
