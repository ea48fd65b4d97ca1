"""The verdict on a decision hash read from the chain, given a directory of bundles (`vaultbot verify`).

In order: the bundle named by the hash is there (else BUNDLE MISSING) and is canonical JSON; each part hashes
to the record's hash of it and the model artifact to the record's model hash (else BUNDLE TAMPERED naming the
part); the re-execution (`decisions.replay`) gives targets; the record hashes to the on-chain hash (else
BUNDLE TAMPERED: its targets when the re-execution disagrees with them, else the record); the record names the
transaction's chain and vault; the re-executed targets equal the record's to the base unit (else DIFFERENT
TARGETS, per market, or that the bundle the chain commits to does not run). Only then REPRODUCED.
"""

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from decisions.bundle import PARTS, bundle_path, model_path, versions
from decisions.replay import replay
from strategy.decision_record import DecisionError, canonical_json, check_record, hash_of, keccak_hex, targets_of
from strategy.models import ModelArtifact, ModelError
from strategy.safe_json import MAX_JSON_DEPTH, JSONTooDeep, loads
from strategy.trailing_best import RULE_HASH


class BundleVerdict(StrEnum):
    REPRODUCED = "REPRODUCED"
    TAMPERED = "BUNDLE TAMPERED"
    DIFFERENT = "DIFFERENT TARGETS"
    MISSING = "BUNDLE MISSING"


@dataclass
class Check:
    """Facts found along the way, then one verdict and why."""

    decision_hash: str
    facts: list[str] = field(default_factory=list)
    verdict: BundleVerdict = BundleVerdict.MISSING
    why: str = ""

    def conclude(self, verdict: BundleVerdict, why: str) -> "Check":
        self.verdict, self.why = verdict, why
        return self

    @property
    def ok(self) -> bool:
        return self.verdict == BundleVerdict.REPRODUCED

    def lines(self) -> list[str]:
        return [f"decision {self.decision_hash}", *(f"  {fact}" for fact in self.facts), f"{self.verdict}: {self.why}"]


def check_decision(directory: Path, decision_hash: str, *, chain_id: int, vault: str) -> Check:
    """The verdict on `decision_hash`, emitted by `vault` on chain `chain_id`, from the bundles in `directory`."""
    check = Check(decision_hash.lower())
    try:
        return _check(check, Path(directory), chain_id=chain_id, vault=vault)
    except OSError as error:  # there but unreadable: permissions, a directory where a file belongs
        return check.conclude(BundleVerdict.MISSING, f"cannot read {error.filename or directory}: "
                                               f"{error.strerror or error}")


def _check(check: Check, directory: Path, *, chain_id: int, vault: str) -> Check:
    path = bundle_path(directory, check.decision_hash)
    if not path.is_file():
        return check.conclude(BundleVerdict.MISSING, f"no bundle {path.name} in {directory}: the keeper wrote none for "
                                               "this decision (decisions made before bundles existed have none)")
    try:
        document, members = _canonical_members(path.read_bytes().decode("utf-8"), f"bundle {path.name}")
        record = document["record"]
        check_record(record)
    except (DecisionError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        return check.conclude(BundleVerdict.TAMPERED, f"encoding: {error}")
    check.facts.append(f"bundle {path}")
    for part in PARTS:
        found = keccak_hex(members.get(part, "null"))  # an absent part hashes as null, as hash_of(None)
        if found != record[f"{part}_hash"]:
            return check.conclude(BundleVerdict.TAMPERED, f"{part}: it hashes to {found}, the record says "
                                                    f"{record[f'{part}_hash']}")
    check.facts.append("inputs, config and state hash to the record's hashes")
    _versions_fact(check, document)
    try:
        artifact = _model(directory, record["model_hash"])
    except FileNotFoundError as error:
        if hash_of(record) != check.decision_hash:
            return check.conclude(BundleVerdict.TAMPERED, f"model hash: the record names {record['model_hash']}, and "
                                                    "no longer hashes to the on-chain decision hash")
        return check.conclude(BundleVerdict.MISSING, str(error))
    except ModelError as error:
        return check.conclude(BundleVerdict.TAMPERED, f"model: {error}")
    check.facts.append("decided by the trailing-best rule" if artifact is None else
                       f"model artifact {record['model_hash']} loads and hashes to its name")
    try:
        targets: dict[str, int] | None = {market.lower(): amount
                                          for market, amount in replay(document, artifact).allocation.trades.items()}
        unrun = ""
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, ModelError) as error:
        # every part hashes as the record says, yet its content does not run: altered along with the record's
        # part hashes (then the record no longer hashes to the chain's), or so written by the keeper
        targets, unrun = None, _reason(error)
    recorded = targets_of(record)
    if hash_of(record) != check.decision_hash:
        part = "targets" if targets is not None and targets != recorded else "record"
        return check.conclude(BundleVerdict.TAMPERED, f"{part}: the record hashes to {hash_of(record)}, not to the "
                                                "on-chain decision hash" + (f" (and the bundle cannot be re-executed: "
                                                                           f"{unrun})" if unrun else ""))
    check.facts.append("the record hashes to the on-chain decision hash")
    if record["chain_id"] != chain_id or record["vault"] != vault.lower():
        return check.conclude(BundleVerdict.TAMPERED, f"record: it is for vault {record['vault']} on chain "
                                                f"{record['chain_id']}, the transaction for {vault.lower()} on "
                                                f"chain {chain_id}")
    if targets is None:
        return check.conclude(BundleVerdict.DIFFERENT, f"the bundle the chain commits to cannot be re-executed "
                                                 f"({unrun}), so it gives no targets to compare")
    if targets != recorded:
        return check.conclude(BundleVerdict.DIFFERENT, _diff(recorded, targets))
    return check.conclude(BundleVerdict.REPRODUCED, f"re-running the model and the allocator on the bundle gives the "
                                              f"same {len(targets)} target(s) and the same decision hash")


def _canonical_members(text: str, what: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The bundle object of `text`, which must be its own canonical form, and each member's canonical text.

    An RFC 8785 object is its members' texts in key order (UTF-16 code units), so the whole is assembled from
    the members, each serialised once: the check for tampered bytes and the part hashes share that work."""
    try:
        document = loads(text)
    except JSONTooDeep:
        raise DecisionError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise DecisionError(f"{what} is not JSON: {error}") from error
    members = {key: canonical_json(value) for key, value in document.items()}
    keys = sorted(members, key=lambda key: key.encode("utf-16-be"))
    if "{" + ",".join(f"{canonical_json(key)}:{members[key]}" for key in keys) + "}" != text:
        raise DecisionError(f"{what} is not in canonical form, so its bytes were changed")
    return document, members


def _model(directory: Path, model_hash: str) -> ModelArtifact | None:
    """The artifact named by `model_hash` (None for the trailing-best rule); FileNotFoundError when absent."""
    if model_hash == RULE_HASH:
        return None
    path = model_path(directory, model_hash)
    if not path.is_dir():
        raise FileNotFoundError(f"no model artifact {model_hash} in {path.parent}")
    artifact = ModelArtifact.load(path)
    if artifact.content_hash != model_hash:
        raise ModelError(f"the artifact in {path} hashes to {artifact.content_hash}, not {model_hash}")
    return artifact


def _versions_fact(check: Check, document: dict[str, Any]) -> None:
    recorded, here = document["config"].get("versions", {}), versions()
    differ = [f"{name} {recorded[name]} (here {here.get(name)})" for name in recorded
              if recorded[name] != here.get(name)]
    check.facts.append("recorded with " + ("the same package versions as here" if not differ else
                                           "other versions: " + ", ".join(differ)))


def _reason(error: Exception) -> str:
    """One line for an error of the re-execution: a missing key is named as such, not as a bare quoted word."""
    if isinstance(error, KeyError) and error.args:
        return f"no {error.args[0]!r} in it"
    return str(error) or type(error).__name__


def _diff(recorded: dict[str, int], replayed: dict[str, int]) -> str:
    lines = [f"market {market}: recorded {recorded.get(market, 0)}, re-executed {replayed.get(market, 0)} "
             f"({replayed.get(market, 0) - recorded.get(market, 0):+d})"
             for market in sorted(set(recorded) | set(replayed)) if recorded.get(market) != replayed.get(market)]
    return "; ".join(lines)
