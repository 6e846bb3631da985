"""Tests of smsdrop.msisdn's compiled metadata: every pattern runs under RE2, and the
shortcut analysis is exact."""

from __future__ import annotations

from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from smsdrop.msisdn import kernels, metadata
from tests.smsdrop.msisdn_sample import TYPES


def test_all_metadata_patterns_compile_under_re2() -> None:
    patterns = set()
    for cc, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            md = (
                PhoneMetadata.metadata_for_nongeo_region(cc)
                if region == "001"
                else PhoneMetadata.metadata_for_region(region)
            )
            for name in ("general_desc", *TYPES):
                desc = getattr(md, name, None)
                if desc is not None and desc.national_number_pattern:
                    patterns.add(f"^(?:{desc.national_number_pattern})$")
            for extra in (
                md.national_prefix_for_parsing,
                md.international_prefix,
                md.leading_digits,
            ):
                if extra:
                    patterns.add(f"^(?:{extra})")
    failing = sorted(p for p in patterns if not kernels._re2_ok(p))
    assert len(patterns) > 1000
    assert not failing


def test_shortcut_analysis_is_exact_on_a_known_case() -> None:
    rules = metadata._rules_for_region("FR")
    assert rules.fast_mobile is not None and rules.fast_not_mobile is not None
    gen = metadata._make_desc("[1-9]\\d{8}", (9,))
    wide = metadata._make_desc("\\d{9}", (9,))
    assert metadata._implies(rules.fast_mobile, gen, rules.specials)
    assert not metadata._implies(wide, gen, ())
    assert not metadata._implies(rules.fast_mobile, gen, (wide,))
