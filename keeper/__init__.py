"""The keeper service: data sources, chain client, scheduler, and the `vaultbot` CLI."""
