"""Depositor tools: amounts, checked deposit/withdraw/redeem plans with previews and a minimum-out guard,
sending them, and the read-only views behind `vaultbot vault` and the web page."""
