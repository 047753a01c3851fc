"""The privacy policy: one object that answers names, rows, errors and files for a run."""

from __future__ import annotations

from pathlib import Path

from dcm_extractor.options import RunOptions
from dcm_extractor.privacy.policy import PrivacyPolicy
from dcm_extractor.privacy.pseudonyms import Pseudonymizer

KEY = b"k" * 40
ROW = {
    "ProjectID": 7,
    "PatientName": "Zhang^San",
    "PatientID": "ID-123",
    "PatientBirthDate": "19800101",
    "StudyDate": "20240301",
    "FileName": "Zhang San CT.zip",
}


def test_options_build_the_policy_once_from_their_fields(tmp_path: Path) -> None:
    options = RunOptions(
        tmp_path / "data", tmp_path / "out", desensitize=True, pseudonymizer=Pseudonymizer(KEY),
        dates="shift",
    )  # fmt: skip
    assert options.privacy is options.privacy
    assert options.privacy == PrivacyPolicy(True, Pseudonymizer(KEY), "shift")
    assert RunOptions(tmp_path / "data", tmp_path / "out").privacy.deidentify is False


def test_deidentified_policy_names_cases_and_tables_by_project_id() -> None:
    policy = PrivacyPolicy(deidentify=True)
    assert policy.case_name("Zhang San", 12) == "P000012"
    assert policy.table_stem("Zhang San", 12) == "P000012"
    assert policy.table_stem("Zhang San", None) == "Zhang San"  # a case without rows
    assert policy.report_labels({"Zhang San": 12, "Li Si": 3}) == {
        "Zhang San": "P000012",
        "Li Si": "P000003",
    }
    assert not policy.names_moved_files
    assert not policy.manifest_in_out
    assert policy.cleans_out
    assert not policy.writes_identified_tables


def test_identified_policy_keeps_names() -> None:
    policy = PrivacyPolicy()
    assert policy.case_name("Zhang San", 12) == "Zhang San"
    assert policy.table_stem("Zhang San", 12) == "Zhang San"
    assert policy.report_labels({"Zhang San": 12}) is None
    assert policy.names_moved_files and policy.manifest_in_out
    assert policy.writes_identified_tables and not policy.cleans_out


def test_primary_rows_are_the_shared_rows_only_when_deidentifying() -> None:
    identified, shared = (
        PrivacyPolicy(False, Pseudonymizer(KEY)),
        PrivacyPolicy(True, Pseudonymizer(KEY)),
    )
    assert identified.primary_rows([ROW]) == [ROW]
    hidden = shared.primary_rows([ROW])
    assert hidden == identified.shared_rows([ROW])
    text = repr(hidden)
    for value in ("Zhang", "ID-123", "19800101", "20240301"):
        assert value not in text
    assert hidden[0]["FileName"] == "P000007_1.zip"


def test_error_text_hides_the_message_only_when_deidentifying() -> None:
    err = OSError("cannot read /data/Zhang San/1.dcm")
    assert PrivacyPolicy(True).error_text("OSError", err) == "OSError"
    assert "Zhang San" in PrivacyPolicy(False).error_text("OSError", err)
