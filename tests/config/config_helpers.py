"""Constants shared by the config tests (imported as ``config_helpers``)."""

from __future__ import annotations

#: The key the test emulator accepts.
KEY = "emulator-key-7f3a9c"
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "LEONARDO_API_KEY", "OPENAI_API_KEY",
            "OPENAI_BASE_URL", "FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_PRICES")
