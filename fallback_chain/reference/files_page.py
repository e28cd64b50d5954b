"""The files the product writes: where each version lives, its current value (read from the
constants of the code that writes it), and which of them hold prompts."""

from __future__ import annotations

import typing

from ._md import code, page, table


def files_page() -> str:
    from ..batch import sidecar
    from ..cassette import format as cassette_format
    from ..cost import ledger
    from ..cost.schema import CatalogueData
    from ..session import _FORMAT as SESSION_FORMAT
    from ..session import SESSION_FILE

    (price_version,) = typing.get_args(CatalogueData.model_fields["schema_version"].annotation)
    versioned = [
        ("ledger (`fallback-chain-ledger.db`, a config's `ledger`)", "SQLite `PRAGMA user_version`",
         code(ledger.SCHEMA_VERSION),
         "an older ledger is migrated when opened (1 to 2: the `user` and `project` columns "
         "are added); a newer one is refused, naming both versions"),
        ("sidecar (`ID.json` beside each image: `generate`, `batch`, `finalize`)",
         "`\"schema\"`", code(sidecar.SCHEMA),
         "written at the current version; readers (`report`, `finalize`) read fields by name. "
         "2 renamed `output_format` to `output_format_requested` and added "
         "`output_format_delivered`"),
        ("price file (`FALLBACK_CHAIN_PRICES`, `PriceCatalogue.load`, a config's `prices`)",
         "`\"schema_version\"`", code(price_version),
         "a complete catalogue (`load(path, merge=False)`) of another version is refused; an "
         "override file is a partial document merged over the built-in data (JSON Merge "
         "Patch) and may leave it out"),
        ("cassette (one JSON file per vendor exchange, `--record DIR`)", "`\"format\"`",
         code(cassette_format.FORMAT), "another format is refused (`CassetteError`)"),
        (f"edit session (`{SESSION_FILE}` in a session folder)", "`\"format\"`",
         code(SESSION_FORMAT), "another format is refused (`ValueError`)"),
    ]
    prompts = [
        ("sidecars", "yes: `prompt`, `negative_prompt`, `revised_prompt`"),
        ("`manifest.jsonl` (batch)", "no: ids, status and paths"),
        ("failures file (batch)", "yes: the failed input rows, to be fed back"),
        ("`report.html`", "yes: prompts and revised prompts of the batch"),
        ("`comparison.json` (compare)", "yes: the prompt and revised prompts"),
        ("batch cache (`--cache`)", "revised prompts only; entries are keyed by the request"),
        ("edit session folder", "yes: each step's prompt or instruction"),
        ("ledger", "no prompt column; the request's `metadata` is stored as given"),
        ("cassettes", "no: prompts, keys, signed URLs and images are scrubbed when recorded"),
        ("the emulator's request log", "yes, in memory: readable through its admin API "
         "(see [security.md](../security.md))"),
    ]
    return page(
        "Files the product writes, and their versions",
        "Each file format that outlives a run carries a version, read from the code that "
        "writes it. A reader refuses a version it does not know rather than guess; changes "
        "within a version only add fields. Keys are never written to any of these files.",
        table(("file", "version marker", "current", "another version"), versioned),
        ["## Which files hold prompts", "",
         "Prompts are your users' data: keep these files where the images are kept.", "",
         *table(("file", "prompts"), prompts)],
    )
