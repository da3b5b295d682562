"""Build hook (the metadata is in pyproject.toml): the wheel carries the message catalogs compiled
from locales/<lang>/*.po and the example files, as package data under bot/data/ (bot.resources
finds them). The build refuses catalogs with gaps rather than ship a bot that answers in English.
An editable install skips this: a checkout reads the sources where they are."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bot import i18n_tool, resources  # noqa: E402 - from this source tree, not an installed copy


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        gaps = i18n_tool.problems(ROOT)
        if gaps:
            shown = "\n".join(gaps[:20]) + ("\n…" if len(gaps) > 20 else "")
            raise SystemExit(
                f"The message catalogs are incomplete (python -m bot.i18n_tool):\n{shown}"
            )
        package = Path(self.build_lib) / "bot"
        shutil.rmtree(package / resources.PACKAGE_DATA, ignore_errors=True)  # no stale language
        resources.compile_catalogs(ROOT / "locales", package)
        resources.copy_examples(ROOT, package)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if self.editable_mode:
            return outputs
        data = Path(self.build_lib) / "bot" / resources.PACKAGE_DATA
        languages = sorted(p.name for p in (ROOT / "locales").iterdir() if p.is_dir())
        outputs += [str(data / resources.mo_name(language)) for language in languages]
        return outputs + [str(data / name) for name in resources.EXAMPLES]


setup(cmdclass={"build_py": BuildWithResources})
