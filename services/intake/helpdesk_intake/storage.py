"""Attachment files on disk, named by their SHA-256: writing one twice is harmless, and identical files
(the same logo in every signature) are stored once."""
import os
import tempfile


class AttachmentStore:
    def __init__(self, root):
        self.root = os.path.abspath(root)

    def relative_path(self, sha256):
        return os.path.join(sha256[:2], sha256[2:4], sha256)

    def path(self, relative):
        return os.path.join(self.root, relative)

    def put(self, sha256, data):
        """Store ``data`` (whose digest is ``sha256``); returns its path relative to the root."""
        relative = self.relative_path(sha256)
        target = self.path(relative)
        if os.path.exists(target) and os.path.getsize(target) == len(data):
            return relative
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)  # atomic: a reader never sees half a file
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        return relative

    def read(self, relative):
        with open(self.path(relative), "rb") as stream:
            return stream.read()
