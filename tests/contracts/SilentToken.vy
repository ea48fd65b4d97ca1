# pragma version ~=0.4.3
"""
@title SilentToken
@notice Test-only ERC-20 (6 decimals, public mint) whose `transfer`,
        `transferFrom` and `approve` can be switched to fail silently:
        return False without moving anything, as some real tokens do.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


decimals: public(constant(uint8)) = 6
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

fail_transfer: public(bool)
fail_transfer_from: public(bool)
fail_approve: public(bool)


@external
def set_failing(transfer: bool, transfer_from: bool, approve: bool):
    self.fail_transfer = transfer
    self.fail_transfer_from = transfer_from
    self.fail_approve = approve


@external
def mint(to: address, amount: uint256):
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    if self.fail_transfer:
        return False
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    if self.fail_transfer_from:
        return False
    self.allowance[owner][msg.sender] -= amount
    self._move(owner, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    if self.fail_approve:
        return False
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=owner, receiver=to, value=amount)
