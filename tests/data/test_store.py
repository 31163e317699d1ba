"""Stores are validated on open and written all or nothing."""
import re

import h5py
import numpy as np
import pytest


# stores are validated on open: a wrong store is an error naming the file, never silently wrong data

def _store(tmp_path):
    from lmkcore.data.procedural import ProceduralSource
    from lmkcore.data.store import write_store

    return write_store(tmp_path / "s.h5", ProceduralSource(n=4, size=16), 16)


@pytest.mark.parametrize("damage,message", [
    (lambda f: f.__delitem__("boxes"), r"no dataset \['boxes'\]"),
    (lambda f: f.attrs.__delitem__("resolution"), r"no attribute \['resolution'\]"),
    (lambda f: f.attrs.__setitem__("resolution", 32), r"images are uint8 \(4, 16, 16, 3\), expected uint8 \(N, 32"),
    (lambda f: (f.__delitem__("images"), f.create_dataset("images", data=np.zeros((4, 16, 16, 3), np.float32))),
     r"images are float32"),
    (lambda f: (f.__delitem__("names"), f.create_dataset("names", data=np.array(["a"], dtype=object),
                                                         dtype=h5py.string_dtype())), r"counts disagree"),
])
def test_a_damaged_store_is_an_error_naming_it(tmp_path, damage, message):
    from lmkcore.data.store import LandmarkStore, StoreError

    path = _store(tmp_path)
    with h5py.File(path, "r+") as f:
        damage(f)
    with pytest.raises(StoreError, match=re.escape(str(path)) + ": " + message):
        LandmarkStore(path)


def test_a_truncated_store_is_an_error_naming_it(tmp_path):
    from lmkcore.data.store import LandmarkStore, StoreError

    path = _store(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(StoreError, match=re.escape(str(path)) + ": not a readable HDF5 store"):
        LandmarkStore(path)


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    from lmkcore.data.procedural import ProceduralSource
    from lmkcore.data.store import write_store

    def samples():
        yield from ProceduralSource(n=2, size=16)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match=r"No space left on device while writing .*s\.h5 \(the partial file"):
        write_store(tmp_path / "s.h5", samples(), 16, info=ProceduralSource(n=1, size=16).info)
    assert list(tmp_path.iterdir()) == []
