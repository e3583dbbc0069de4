"""Run by ``mkdocs build`` (the mkdocs-gen-files plugin): writes the generated pages.

The pages themselves are computed by ``docs/docs_pages.py`` (no mkdocs there, so that
``tests/test_docs.py`` can check them without building the site).
"""

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_pages  # noqa: E402

for name, text in docs_pages.pages().items():
    with mkdocs_gen_files.open(name, "w") as f:
        f.write(text)
