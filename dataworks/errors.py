"""DataWorks' error hierarchy and the exit code each error maps to.

    DataWorksError                  root; never raised directly
    ├── UserError          exit 2   the user can fix it: a setting, a plugin file, an option
    │   ├── SettingsError           bad or missing setting / profile / URI
    │   ├── PluginError             a strategy or generator file that cannot be used
    │   ├── TemplateError           a JSON template with a bad placeholder
    │   └── CheckpointError         a checkpoint that cannot be read or does not match
    ├── RunFailed          exit 1   the run started and could not finish (fatal server error,
    │                               retries exhausted); checkpoints were saved
    └── Interrupted        exit 130 SIGINT / SIGTERM; checkpoints were saved

Engines raise these, never driver exceptions; `dataworks.core.errors` is the one seam that
translates PyMongo errors. The CLI prints `str(error)` on one line and exits with
`error.exit_code`; tracebacks appear only with `--debug`.
"""

from __future__ import annotations


class DataWorksError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UserError(DataWorksError):
    exit_code = 2


class SettingsError(UserError):
    pass


class PluginError(UserError):
    pass


class TemplateError(UserError):
    pass


class CheckpointError(UserError):
    pass


class RunFailed(DataWorksError):
    exit_code = 1


class Interrupted(DataWorksError):
    exit_code = 130
