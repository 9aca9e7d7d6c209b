"""The generated data key (development and the demo): concurrent first users agree on it."""

from __future__ import annotations

import threading

from masthead.core import crypto


def test_concurrent_first_use_never_reads_an_empty_or_different_key(settings, tmp_path):
    settings.MASTHEAD_DATA_KEYS = ""
    settings.DATA_DIR = tmp_path
    for _round in range(20):
        (tmp_path / "data_key").unlink(missing_ok=True)
        barrier = threading.Barrier(8)
        seen: list[object] = []

        def first_use(barrier=barrier, seen=seen):
            barrier.wait()
            try:
                seen.append(crypto._keys.__wrapped__())
            except Exception as exc:  # noqa: BLE001 - the assertion below reports it
                seen.append(exc)

        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 8
        assert all(isinstance(keys, tuple) and len(keys) == 1 for keys in seen), seen
        assert len(set(seen)) == 1, seen
        assert (tmp_path / "data_key").stat().st_mode & 0o777 == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["data_key"]
