"""MSISDN (recipient phone number) normalisation and classification, vectorised.

Why this package exists: ``phonenumbers.parse`` + ``is_valid_number`` costs ~17 s per million
rows, far too slow for campaign files. The rules it applies are data (libphonenumber's
metadata), so we compile that data once into RE2 regexes and apply them with pyarrow compute
to whole columns, grouped by country calling code: the cost is O(rows) of regex work plus
O(distinct countries) of Python.

The results follow ``phonenumbers`` exactly (``parse`` then ``is_valid_number``,
``number_type``, ``region_code_for_number``, ``format_number(E164)``) for the input syntax we
accept; the deliberate divergences are listed in ``docs/PROTOCOL.md``:

* only ASCII digits, one leading ``+``, whitespace (any Unicode space) and ``. - ( ) /`` are
  accepted; letters, extensions, ``tel:`` URIs, ``++`` and other characters make a row INVALID
  with a null ``e164`` (phonenumbers is more lenient and would read e.g. ``Tel: 06…`` or
  vanity letters);
* ``00`` followed by a non-zero digit is an international prefix for every default region
  (libphonenumber only knows the default region's own prefix, e.g. ``011`` for US);
* ``e164`` is set whenever phonenumbers could parse the digits, even when the number is not
  valid (it is what a user typed, canonicalised): filter on ``status`` to use it.

The package, one responsibility a module (each imports only those listed before it):

* ``limits``: phonenumbers' length limits, restated;
* ``regex_engine``: what a pattern means (groups, widths, language inclusion), the only
  module using CPython's private ``re._parser``;
* ``kernels``: regexes applied to whole Arrow columns (RE2, or Python ``re`` per distinct
  value);
* ``metadata``: libphonenumber's metadata compiled per region;
* ``parsing`` and ``classification``: ``phonenumbers.parse`` then validity, type and region;
* ``masking``: what a log or reject file may show of a number (personal data);
* ``networks``: the mobile network a number range was allocated to.
"""

from __future__ import annotations

from phonenumbers.phonenumberutil import SUPPORTED_REGIONS

from smsdrop.msisdn.classification import MsisdnStatus, classify
from smsdrop.msisdn.masking import mask, mask_one
from smsdrop.msisdn.networks import network_names

__all__ = ["SUPPORTED_REGIONS", "MsisdnStatus", "classify", "mask", "mask_one", "network_names"]
