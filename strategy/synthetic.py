"""A synthetic DeFi yield market in the canonical schema, deterministic by seed, for tests and benchmarks
until real data is available (protocol and stablecoin names are made up).

Dynamics, one step per day:

- base APY per pool mean-reverts to a level that shifts regime now and then (about every 150 days), and
  depends on the pool: lending rates rise with utilization, DEX/vault yields are diluted by TVL growth;
- reward APY comes from emission programs that start at random, decay exponentially and end; it is
  emissions / TVL, so inflows dilute it;
- TVL is a random walk whose drift chases yield (APY above the day's median draws deposits); a lending
  pool's `tvl_usd` is its available liquidity, supplied × (1 - utilization), as DeFiLlama reports lending
  markets, so it swings with borrowing;
- adverse events: a pool's APY collapses (permanent regime cut, rewards stop) or its TVL runs (in a lending
  pool the run lends out nearly everything: utilization near 1, the loss event `strategy.targets` calls
  illiquid); a protocol is
  exploited (TVL and APY of all its pools collapse) or paused (TVL out, APY near 0 for some days); a
  stablecoin depegs (price drop with a slow recovery, TVL out of the pools holding it). About 60 % of the
  events are announced 1–4 days ahead by a news item with a risk word naming the protocol or token, and
  half are preceded by small outflows and softer yields; most are reported on the day; some risk items are
  false alarms, and most news is harmless background.

`generate_market` returns all tables plus the event log (ground truth), of pools of every kind or of
stablecoin lending pools only (`stablecoin_lending`: the universe of a stablecoin vault, as `vaultbot backtest`
and `vaultbot model` generate it); `generate_market_history` only the market history.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from strategy.data.checks import TIMESTAMP_DTYPE
from strategy.data.schema import MARKET_COLUMNS, NEWS_COLUMNS, POOL_META_COLUMNS

PROTOCOLS = {  # slug → kind
    "helix-lend": "lending",
    "lumen-lending-v2": "lending",
    "orbit-finance": "lending",
    "zephyr-money": "lending",
    "quasar-swap": "dex",
    "argon-dex": "dex",
    "nimbus-v3": "dex",
    "cobalt-vaults": "vault",
    "tidal-yield": "vault",
    "ember-stake": "staking",
}
# Made-up stablecoins beside USDC, the devnet vault's asset: a synthetic backtest's vault holds any of their lending
# pools (`backtest.market.investable_pools`); the volatile tokens' pools only train the models.
STABLE_TOKENS = ("USDC", "NUSD", "QUSD", "KUSD", "VUSD")
VOLATILE_TOKENS = {"WETH": (2000.0, 0.035), "WBTC": (30000.0, 0.03), "STETH": (2000.0, 0.035)}  # start, daily vol
CHAINS = ("Ethereum", "Arbitrum", "Base", "Optimism", "Polygon")
NEWS_SOURCES = ("defi-wire", "chain-daily", "yield-watch")

# Mean base APY (percent) by pool kind, for stablecoin and for volatile underlying.
_BASE_APY = {"lending": (5.0, 1.5), "dex": (6.0, 9.0), "vault": (7.0, 5.0), "staking": (3.5, 3.5)}
# Daily hazards of adverse events.
_POOL_EVENT_HAZARD = 1 / 1000
_EXPLOIT_HAZARD = 1 / 3000
_PAUSE_HAZARD = 1 / 2000
_DEPEG_HAZARD = 1 / 1500
# Share of TVL left after an event (uniform range), reached over 1-3 days.
_TVL_LEFT = {"tvl_run": (0.35, 0.65), "exploit": (0.05, 0.3), "pause": (0.6, 0.85), "depeg": (0.4, 0.8)}
_WARNING_PROBABILITY = 0.6  # an event is announced by a risk news item a few days ahead
_TELL_PROBABILITY = 0.5  # an event is preceded by small outflows and softer yields
_REPORT_PROBABILITY = 0.9  # an event is reported on the day it shows
_BACKGROUND_NEWS_PER_DAY = 2.5

_WARNINGS = {
    "apy_collapse": "{protocol} {token} pool rates could be cut as insolvency fears grow",
    "tvl_run": "Whales pull {token} from {protocol} amid hack rumours",
    "exploit": "Security researchers warn of a possible exploit in {protocol} contracts",
    "pause": "{protocol} team may pause markets after an oracle incident",
    "depeg": "{token} slips on thin liquidity as depeg worries mount",
}
_REPORTS = {
    "apy_collapse": "{protocol} slashes {token} yields after losses; insolvency questions remain",
    "tvl_run": "Depositors rush out of {protocol} {token} pool after hack scare",
    "exploit": "{protocol} hacked: attacker drains funds in exploit",
    "pause": "{protocol} pauses deposits and borrowing",
    "depeg": "{token} depegs, trading well below one dollar",
}
_BACKGROUND = (
    "{protocol} launches a new {token} market on {chain}",
    "{protocol} announces partnership to grow {token} liquidity",
    "{token} supply grows steadily on {chain}",
    "{protocol} governance approves fee update",
    "Analysts praise {protocol} for strong, sustainable {token} yields",
    "{protocol} completes audit with no critical findings",
)


@dataclass(frozen=True)
class SyntheticMarket:
    """Canonical tables of one synthetic market and its ground-truth event log."""

    history: pd.DataFrame  # canonical market history, with price and utilization
    pools: pd.DataFrame  # pool metadata
    news: pd.DataFrame  # canonical news
    events: pd.DataFrame  # one row per pool hit: timestamp (first day the effect shows), pool, kind, subject


def generate_market_history(
    n_pools: int = 50, days: int = 730, seed: int = 0, start: str | pd.Timestamp = "2023-01-01"
) -> pd.DataFrame:
    """The canonical market history of `generate_market`."""
    return generate_market(n_pools, days, seed, start).history


def generate_market(
    n_pools: int = 50, days: int = 730, seed: int = 0, start: str | pd.Timestamp = "2023-01-01", *,
    stablecoin_lending: bool = False,
) -> SyntheticMarket:
    """A market of ``n_pools`` pools over ``days`` daily observations (UTC midnights from ``start``).

    With ``stablecoin_lending`` every pool is a stablecoin lending pool (`strategy.data.universe`), what a
    stablecoin vault can hold and `vaultbot data download` records by default; otherwise pools of every kind
    and token, volatile ones and DEX pairs too."""
    if n_pools < 1 or days < 2:
        raise ValueError("need at least one pool and two days")
    rng = np.random.default_rng(seed)
    calendar = pd.date_range(pd.Timestamp(start).normalize().tz_localize(None), periods=days, freq="D", tz="UTC")
    pools = _pools(rng, n_pools, days, stablecoin_lending)
    prices = _token_prices(rng, days)
    events = _schedule_events(rng, pools, days)
    shocks = _event_effects(rng, events, pools, prices, days)
    history = _simulate(rng, pools, prices, shocks, calendar)
    news = _news(rng, pools, events, calendar, seed)
    event_log = events.explode("pools").rename(columns={"pools": "pool"})
    event_log = event_log.assign(timestamp=calendar[event_log["day"].to_numpy(dtype=int)])
    return SyntheticMarket(
        history=history,
        pools=pools[list(POOL_META_COLUMNS)],
        news=news,
        events=event_log[["timestamp", "pool", "kind", "subject"]].sort_values(
            ["timestamp", "pool"], ignore_index=True),
    )


def _pools(rng: np.random.Generator, n_pools: int, days: int, stablecoin_lending: bool) -> pd.DataFrame:
    lending = [project for project, kind in PROTOCOLS.items() if kind == "lending"]
    projects = rng.choice(lending if stablecoin_lending else list(PROTOCOLS), size=n_pools)
    rows = []
    for project in projects:
        kind = PROTOCOLS[project]
        if stablecoin_lending:
            tokens = [str(rng.choice(STABLE_TOKENS))]
        elif kind == "staking":
            tokens = [str(rng.choice(["WETH", "STETH"]))]
        elif kind == "dex":
            stable_pair = rng.random() < 0.5
            first = rng.choice(STABLE_TOKENS if stable_pair else list(VOLATILE_TOKENS))
            second = rng.choice([t for t in STABLE_TOKENS if t != first])
            tokens = [str(first), str(second)]
        else:
            tokens = [str(rng.choice(STABLE_TOKENS if rng.random() < 0.65 else list(VOLATILE_TOKENS)))]
        stable = all(t in STABLE_TOKENS for t in tokens)
        rows.append({
            "pool": str(uuid.UUID(bytes=rng.bytes(16), version=4)),
            "chain": str(rng.choice(CHAINS)),
            "project": str(project),
            "kind": kind,
            "symbol": "-".join(tokens),
            "tokens": tokens,
            "stablecoin": stable,
            "underlying_tokens": [_token_address(t) for t in tokens],
            "first_day": 0 if rng.random() < 0.75 else int(rng.integers(1, max(2, int(days * 0.6)))),
            "base_level": _BASE_APY[kind][0 if stable else 1] * float(rng.lognormal(0.0, 0.35)),
            "tvl0": float(rng.lognormal(np.log(5e7), 1.3)),
        })
    return pd.DataFrame(rows)


def _token_address(token: str) -> str:
    return "0x" + hashlib.sha256(token.encode()).hexdigest()[:40]


def _token_prices(rng: np.random.Generator, days: int) -> pd.DataFrame:
    """Daily USD prices (days × tokens) before depeg shocks: stables wobble around 1, others are log-random walks."""
    prices = {}
    for token in STABLE_TOKENS:
        noise = rng.normal(0.0, 0.0004, days)
        wobble = np.zeros(days)
        for day in range(1, days):
            wobble[day] = 0.9 * wobble[day - 1] + noise[day]
        prices[token] = 1.0 + wobble
    for token, (first, volatility) in VOLATILE_TOKENS.items():
        prices[token] = first * np.exp(np.cumsum(rng.normal(0.0, volatility, days)))
    prices["STETH"] = prices["WETH"] * (1.0 - np.abs(rng.normal(0.002, 0.002, days)))
    return pd.DataFrame(prices)


def _schedule_events(rng: np.random.Generator, pools: pd.DataFrame, days: int) -> pd.DataFrame:
    """Event days and the pools each hits: pool-level (collapse, run), protocol-level (exploit, pause),
    token-level (depeg)."""
    events = []
    earliest = 10  # leave a little history before the first event

    def add(kind: str, subject: str, hit: pd.Series, hazard: float) -> None:
        for day in np.flatnonzero(rng.random(days) < hazard):
            alive = pools.loc[hit & (pools["first_day"] + earliest <= day), "pool"].tolist()
            if day >= earliest and alive:
                events.append({"day": int(day), "kind": kind, "subject": subject, "pools": alive})

    for _, pool in pools.iterrows():
        kind = "apy_collapse" if rng.random() < 0.5 else "tvl_run"
        add(kind, pool["pool"], pools["pool"] == pool["pool"], _POOL_EVENT_HAZARD)
    for project in sorted(set(pools["project"])):
        add("exploit", project, pools["project"] == project, _EXPLOIT_HAZARD)
        add("pause", project, pools["project"] == project, _PAUSE_HAZARD)
    for token in STABLE_TOKENS:
        add("depeg", token, pools["tokens"].map(lambda tokens, t=token: t in tokens), _DEPEG_HAZARD)
    return pd.DataFrame(events, columns=["day", "kind", "subject", "pools"]).sort_values("day", ignore_index=True)


class _Event(NamedTuple):
    """A row of `_schedule_events`."""

    day: int
    kind: str
    subject: str  # the pool, protocol or token hit
    pools: list[str]


def _event_rows(events: pd.DataFrame) -> list[_Event]:
    """The rows of `_schedule_events` as typed tuples (pandas leaves a row's values untyped)."""
    rows = events[list(_Event._fields)].itertuples(index=False, name=None)
    return [_Event(int(day), str(kind), str(subject), list(pools)) for day, kind, subject, pools in rows]


@dataclass
class _Shocks:
    """Event effects on the simulation, days × pools."""

    tvl_log_return: np.ndarray  # added to the day's log TVL change
    level_factor: np.ndarray  # multiplies the base APY level from that day on
    base_factor: np.ndarray  # multiplies the base APY itself that day (abrupt cuts)
    rewards_stop: np.ndarray  # emissions end that day
    apy_factor: np.ndarray  # temporary multiplier on the day's APY (pauses)


def _event_effects(
    rng: np.random.Generator, events: pd.DataFrame, pools: pd.DataFrame, prices: pd.DataFrame, days: int
) -> _Shocks:
    """The shocks the events cause; depegs are written into ``prices`` directly."""
    shape = (days, len(pools))
    shocks = _Shocks(np.zeros(shape), np.ones(shape), np.ones(shape), np.zeros(shape, bool), np.ones(shape))
    column = {pool: i for i, pool in enumerate(pools["pool"])}
    for event in _event_rows(events):
        hit = [column[p] for p in event.pools]
        day = event.day
        if rng.random() < _TELL_PROBABILITY:
            # Informed money leaves first: a small outflow and softer yields over the days before.
            lead = int(rng.integers(2, 7))
            shocks.tvl_log_return[day - lead : day, hit] += np.log(rng.uniform(0.85, 0.95)) / lead
            shocks.level_factor[day - lead : day, hit] *= rng.uniform(0.75, 0.9) ** (1 / lead)
        if event.kind in _TVL_LEFT:
            spread = int(rng.integers(1, 4))
            loss = np.log(rng.uniform(*_TVL_LEFT[event.kind])) / spread
            shocks.tvl_log_return[day : day + spread, hit] += loss
        if event.kind in ("apy_collapse", "exploit"):
            cut = rng.uniform(0.05, 0.35)
            shocks.level_factor[day, hit] *= cut
            shocks.base_factor[day, hit] *= cut
            shocks.rewards_stop[day, hit] = True
        if event.kind == "pause":
            shocks.apy_factor[day : day + int(rng.integers(3, 11)), hit] = 0.1
        if event.kind == "depeg":
            depth, recovery = rng.uniform(0.03, 0.15), rng.uniform(5.0, 30.0)
            after = np.arange(days - day)
            lasting = rng.uniform(0.0, 0.3)
            path = depth * (lasting + (1 - lasting) * np.exp(-np.maximum(after - 1, 0) / recovery))
            path[0] = depth / 2  # the drop takes two days
            prices.loc[day:, event.subject] = prices.loc[day:, event.subject].to_numpy() - path
    return shocks


def _simulate(
    rng: np.random.Generator, pools: pd.DataFrame, prices: pd.DataFrame, shocks: _Shocks, calendar: pd.DatetimeIndex
) -> pd.DataFrame:
    days, n = len(calendar), len(pools)
    lending = (pools["kind"] == "lending").to_numpy()
    diluted = pools["kind"].isin(["dex", "vault"]).to_numpy()
    level = pools["base_level"].to_numpy(dtype=float)
    tvl0 = pools["tvl0"].to_numpy(dtype=float)
    log_tvl = np.log(tvl0)
    base = level.copy()
    target_util = rng.uniform(0.5, 0.85, n)
    util = target_util.copy()
    emissions = np.where(rng.random(n) < 0.4, rng.lognormal(np.log(3.0), 0.6, n) * tvl0 / 100, 0.0)  # USD a year
    lifetime = rng.uniform(30, 150, n)
    out = {name: np.empty((days, n)) for name in ("apy_base", "apy_reward", "tvl_usd", "utilization")}
    for day in range(days):
        regime_shift = rng.random(n) < 1 / 150
        level = np.clip(level * np.where(regime_shift, rng.lognormal(0.0, 0.5, n), 1.0), 0.2, 40.0)
        level = level * shocks.level_factor[day]
        # Flows chase yield: deposits move toward pools paying more than the day's median.
        apy_yesterday = base + 100 * emissions / np.exp(log_tvl)
        excess = np.clip((apy_yesterday - np.median(apy_yesterday)) / max(np.median(apy_yesterday), 1.0), -1, 1)
        step = 0.0004 + 0.006 * excess - 0.002 * (log_tvl - np.log(tvl0)) + rng.normal(0, 0.015, n)
        log_tvl = log_tvl + step + shocks.tvl_log_return[day]
        tvl = np.exp(log_tvl)
        # Withdrawals push utilization up (and with it lending rates), deposits push it down.
        util = np.clip(util + 0.1 * (target_util - util) - 0.8 * step - 0.8 * shocks.tvl_log_return[day]
                       + rng.normal(0, 0.01, n), 0.05, 0.99)
        target = np.where(lending, level * (util / target_util) ** 2, level)
        target = np.where(diluted, target * (tvl0 / tvl) ** 0.3, target)
        base = base * shocks.base_factor[day]
        base = np.maximum(base + 0.1 * (target - base) + 0.05 * target * rng.normal(0, 1, n), 0.0)
        # Reward programs: decay, end when small or on an event, start now and then.
        emissions = emissions * np.exp(-1 / lifetime)
        emissions = np.where(shocks.rewards_stop[day] | (100 * emissions / tvl < 0.05), 0.0, emissions)
        starts = (emissions == 0) & (rng.random(n) < 1 / 180)
        emissions = np.where(starts, rng.lognormal(np.log(4.0), 0.6, n) * tvl / 100, emissions)
        lifetime = np.where(starts, rng.uniform(30, 150, n), lifetime)
        reward = np.minimum(100 * emissions / tvl, 200.0)
        out["apy_base"][day] = base * shocks.apy_factor[day]
        out["apy_reward"][day] = reward * shocks.apy_factor[day]
        out["tvl_usd"][day] = np.where(lending, tvl * (1 - util), tvl)
        out["utilization"][day] = np.where(lending, util, np.nan)
    pool_price = np.column_stack([prices[tokens].mean(axis=1).to_numpy() for tokens in pools["tokens"]])
    alive = np.arange(days)[:, None] >= pools["first_day"].to_numpy()[None, :]
    day_index, pool_index = np.nonzero(alive)
    history = pd.DataFrame({
        "timestamp": calendar[day_index].astype(TIMESTAMP_DTYPE),
        "pool": pools["pool"].to_numpy()[pool_index].astype(str),
        "apy_base": out["apy_base"][day_index, pool_index],
        "apy_reward": out["apy_reward"][day_index, pool_index],
        "tvl_usd": out["tvl_usd"][day_index, pool_index],
        "price": pool_price[day_index, pool_index],
        "utilization": out["utilization"][day_index, pool_index],
    })
    history["apy"] = history["apy_base"] + history["apy_reward"]
    return history[list(MARKET_COLUMNS)].sort_values(["pool", "timestamp"], ignore_index=True)


def _news(
    rng: np.random.Generator, pools: pd.DataFrame, events: pd.DataFrame, calendar: pd.DatetimeIndex, seed: int
) -> pd.DataFrame:
    """Warnings before some events, reports on most event days, false alarms, and background items."""
    by_id = pools.set_index("pool")
    days = len(calendar)

    def pool_words(pool_id: str) -> dict[str, str]:
        pool = by_id.loc[pool_id]
        return {"protocol": _display(str(pool["project"])), "token": str(pool["tokens"][0]),
                "chain": str(pool["chain"])}

    def words(kind: str, subject: str) -> dict[str, str]:
        if kind in ("apy_collapse", "tvl_run"):
            return pool_words(subject)
        return {"token": subject} if kind == "depeg" else {"protocol": _display(subject)}

    def random_subject(kind: str) -> str:
        pool = pools.iloc[int(rng.integers(len(pools)))]
        if kind == "depeg":
            return str(rng.choice(STABLE_TOKENS))
        return pool["pool"] if kind in ("apy_collapse", "tvl_run") else pool["project"]

    items: list[tuple[int, str]] = []  # (day, title)
    for event in _event_rows(events):
        if rng.random() < _WARNING_PROBABILITY:
            items.append((event.day - int(rng.integers(1, 5)),
                          _WARNINGS[event.kind].format(**words(event.kind, event.subject))))
        if rng.random() < _REPORT_PROBABILITY:
            items.append((event.day, _REPORTS[event.kind].format(**words(event.kind, event.subject))))
    for _ in range(rng.poisson(_WARNING_PROBABILITY * max(len(events), 1))):  # false alarms
        kind = str(rng.choice(list(_WARNINGS)))
        items.append((int(rng.integers(days)), _WARNINGS[kind].format(**words(kind, random_subject(kind)))))
    background = rng.poisson(_BACKGROUND_NEWS_PER_DAY * days)
    for day, pool_id, template in zip(
        rng.integers(days, size=background), rng.choice(pools["pool"].to_numpy(), background),
        rng.choice(_BACKGROUND, background), strict=True,
    ):
        items.append((int(day), str(template).format(**pool_words(pool_id))))
    items = [(day, title) for day, title in items if 0 <= day < days]
    # An item of day d is published during the day that ends at midnight d, so features see it at d, not earlier.
    seconds_before = rng.uniform(60, 86_400, len(items))
    published = calendar[[day for day, _ in items]] - pd.to_timedelta(seconds_before, unit="s")
    news = pd.DataFrame({
        "timestamp": published.floor("s").astype(TIMESTAMP_DTYPE),
        "title": [title for _, title in items],
        "source": rng.choice(NEWS_SOURCES, len(items)),
        "url": [f"https://news.example/synthetic/{seed}/{i}" for i in range(len(items))],
        "summary": [f"Synthetic news item: {title}." for _, title in items],
    })
    return news[list(NEWS_COLUMNS)].sort_values(["timestamp", "url"], ignore_index=True)


def _display(project: str) -> str:
    """How news writes a protocol: ``lumen-lending-v2`` → ``Lumen Lending``."""
    return " ".join(part for part in project.split("-") if not (part[0] == "v" and part[1:].isdigit())).title()
