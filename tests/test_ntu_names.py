"""tools/py: NTU sample names, the benchmark rules they decide, the missing-skeleton lists."""
from pathlib import Path

import data
from tools.ntu_names import (NTU60_XSUB_TRAIN_SUBJECTS, NTU120_XSUB_TRAIN_SUBJECTS, ntu_in_dataset, ntu_is_train,
                              read_missing_list)

FIXTURES = Path(__file__).parent / "fixtures"


def test_split_rules_select_exactly_the_listed_subjects_cameras_and_setups():
    for subject in range(1, 107):
        name60 = f"S001C001P{subject:03d}R001A001"
        assert ntu_is_train(name60, "ntu60", "xsub") == (subject in NTU60_XSUB_TRAIN_SUBJECTS)
        assert ntu_is_train(name60, "ntu120", "xsub") == (subject in NTU120_XSUB_TRAIN_SUBJECTS)
    assert len(NTU60_XSUB_TRAIN_SUBJECTS) == 20 and len(NTU120_XSUB_TRAIN_SUBJECTS) == 53
    assert [ntu_is_train(f"S001C{c:03d}P001R001A001", "ntu60", "xview") for c in (1, 2, 3)] == [False, True, True]
    assert [ntu_is_train(f"S{s:03d}C001P001R001A001", "ntu120", "xset") for s in range(1, 33)] == \
           [s % 2 == 0 for s in range(1, 33)]
    assert ntu_in_dataset("S017C001P001R001A060", "ntu60")
    assert not ntu_in_dataset("S018C001P001R001A001", "ntu60")
    assert not ntu_in_dataset("S001C001P001R001A061", "ntu60")


def test_missing_list_tolerates_the_official_header_lines():
    names = read_missing_list(FIXTURES / "missing_with_header.txt")
    assert names == {"S001C002P005R002A008", "S001C002P006R001A008", "S018C001P008R001A061"}
    assert len(read_missing_list(data.RESOURCES / "ntu60_samples_with_missing_skeletons.txt")) == 302
    assert len(read_missing_list(data.RESOURCES / "ntu120_samples_with_missing_skeletons.txt")) == 535
