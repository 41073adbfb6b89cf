"""What a customer may attach to a request: the rules as plain data and one function, no Flask.

Checked in the gateway, before anything is sent on, so that a refused file leaves nothing half-made; the
intake service still checks the total (its ``WEB_FORM_MAX_BYTES``) for callers of the REST API.
The type is judged by the name's extension *and* the file's first bytes where the format has a signature,
so a renamed executable is not taken for a picture.
"""
import os
from dataclasses import dataclass

MAX_FILES = 5
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 8 * 1024 * 1024

TYPES = {  # extension -> (content type, signatures its first bytes may start with; empty: any)
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".txt": ("text/plain", ()),
    ".log": ("text/plain", ()),
    ".csv": ("text/csv", ()),
}


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Refusal:
    code: str  # too_many_files | file_too_large | total_too_large | type_not_allowed | content_mismatch | empty_file
    filename: str = ""


def check(files):
    """``files``: [(filename, bytes)] as sent. Returns ([Upload], None) or (None, Refusal): all or nothing."""
    files = [(name, data) for name, data in files if name]
    if len(files) > MAX_FILES:
        return None, Refusal("too_many_files")
    taken, total = [], 0
    for name, data in files:
        clean = os.path.basename(name.replace("\\", "/"))[:255] or "file"
        extension = os.path.splitext(clean)[1].lower()
        if extension not in TYPES:
            return None, Refusal("type_not_allowed", clean)
        if not data:
            return None, Refusal("empty_file", clean)
        if len(data) > MAX_FILE_BYTES:
            return None, Refusal("file_too_large", clean)
        content_type, signatures = TYPES[extension]
        if signatures and not data.startswith(signatures):
            return None, Refusal("content_mismatch", clean)
        if not signatures and b"\x00" in data[:4096]:
            return None, Refusal("content_mismatch", clean)  # a "text" file that is binary
        total += len(data)
        taken.append(Upload(clean, content_type, data))
    if total > MAX_TOTAL_BYTES:
        return None, Refusal("total_too_large")
    return taken, None
