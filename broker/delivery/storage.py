"""Release files: Parquet named by its sha256, each written whole or not at all.

A local directory by default; any fsspec URL (`s3://bucket/prefix`, `memory://...`) in production,
shared by every API replica. Files are staged on local disk first, so an interrupted upload or a
crash mid-write leaves at most a staging file, never a half-written release under its real name.
"""

import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import anyio
import fsspec
from fsspec.implementations.local import LocalFileSystem

STAGING_MAX_AGE_SECONDS = 3600
logger = logging.getLogger("broker.delivery.storage")


class ReleaseStore:
    def __init__(self, root: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local:
            self.root = os.path.abspath(self.root)
            self.staging = Path(self.root) / ".staging"
        else:
            self.staging = Path(tempfile.gettempdir()) / "broker-staging"

    def staging_file(self, suffix: str = "") -> Path:
        """A fresh path in the staging area (same filesystem as the store when it is local)."""
        self.staging.mkdir(parents=True, exist_ok=True)
        return self.staging / f"{uuid.uuid4().hex}{suffix}"

    @staticmethod
    def key_for(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256}.parquet"

    def put(self, staged: Path, sha256: str) -> str:
        """Move a complete, flushed file into the store under its content name; returns its key."""
        key = self.key_for(sha256)
        final = f"{self.root}/{key}"
        if self.is_local:
            with staged.open("rb") as handle:
                os.fsync(handle.fileno())
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(staged, final)  # atomic on one filesystem: the name appears whole
            return key
        temporary = f"{self.root}/.staging/{uuid.uuid4().hex}"
        self.fs.put_file(str(staged), temporary)
        self.fs.mv(temporary, final)
        staged.unlink(missing_ok=True)
        return key

    def local_path(self, key: str) -> tuple[Path, bool]:
        """A local path to read the release from, and whether it is a temporary copy to delete."""
        if self.is_local:
            return Path(self.root) / key, False
        copy = self.staging_file(".parquet")
        self.fs.get_file(f"{self.root}/{key}", str(copy))
        return copy, True

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(f"{self.root}/{key}"))

    def sweep_staging(self, older_than: float = STAGING_MAX_AGE_SECONDS) -> int:
        """Remove staging files nobody has written for `older_than` seconds; returns how many.

        Age counts from the last write (mtime), so an upload still arriving, however long it
        has run, keeps its file. Files vanishing meanwhile (a request finishing) are no error.
        """
        cutoff = time.time() - older_than
        removed = 0
        if not self.staging.is_dir():
            return 0
        for path in self.staging.iterdir():
            try:
                if path.lstat().st_mtime >= cutoff:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed


async def keep_staging_swept(store: ReleaseStore, *, every: float, older_than: float) -> None:
    """Sweep the staging area now and every `every` seconds until cancelled.

    A killed upload leaves its partial file behind (one probe left 160 MB); sweeping only at
    start-up kept such files until some replica restarted.
    """
    while True:
        try:
            removed = await anyio.to_thread.run_sync(store.sweep_staging, older_than)
        except OSError:
            logger.exception("sweeping the staging area %s failed; retrying later", store.staging)
        else:
            if removed:
                logger.info("removed %d abandoned staging file(s) from %s", removed, store.staging)
        await anyio.sleep(every)
