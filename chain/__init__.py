"""Everything that touches a chain: contract artifacts, the local anvil node, deployment."""
