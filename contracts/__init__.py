"""Makes contracts/ the package `vaultbot.contracts` (pyproject.toml), so the Vyper sources ship as package data."""
