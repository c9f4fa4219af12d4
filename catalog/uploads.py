"""What every reader of uploaded workbooks refuses before unpacking anything.

XLSX, XLSM and ODS are zip archives; a legacy XLS (OLE2) is not compressed, so its size is
bounded by the upload's.
"""

import zipfile
from pathlib import Path
from typing import IO

from core.errors import FieldError, InvalidInput

MAX_XLSX_RATIO = 200


def refuse_xlsx_bombs(
    source: Path | IO[bytes], packed_size: int, *, max_unpacked: int, location: str
) -> None:
    """An XLSX (or XLSM, ODS) is a zip: refuse one that is not, or that unpacks to far more than
    it weighs."""
    try:
        with zipfile.ZipFile(source) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise InvalidInput(
            "The file looks like a workbook (XLSX or ODS) but is not a valid zip archive.",
            errors=[FieldError(location, "Re-save it from Excel or WPS as .xlsx.")],
        ) from exc
    if unpacked > max_unpacked or unpacked > MAX_XLSX_RATIO * max(packed_size, 1):
        raise InvalidInput(
            "The workbook unpacks to far more than it weighs; it is refused as a zip bomb.",
            errors=[FieldError(location, "Upload the file as it was saved, not crafted.")],
        )
