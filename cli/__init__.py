"""The `vaultbot` console script: one Typer app with a sub-command group per user.

Each group lives next to the code it drives and keeps heavy imports inside its
commands, so `vaultbot --help` stays fast.
"""

import typer
import typer.core

from cli.backtest import app as backtest_app
from cli.data import app as data_app
from cli.decisions import app as decisions_app
from cli.demo import demo
from cli.devnet import app as devnet_app
from cli.keeper import app as keeper_app
from cli.model import app as model_app
from cli.vault import app as vault_app
from cli.verify import verify
from cli.web import app as web_app


def _flag_type_shown(option: typer.core.TyperOption, ctx: typer.Context) -> str | None:
    """typer 0.29's rich help shows every option's type, so a flag reads `--dry-run <bool>` as if it took a
    value (it refuses one): a flag shows none, as in typer's plain help and its earlier releases."""
    return None if option.is_flag else _shown_type(option, ctx)


_shown_type = typer.core.TyperOption.display_type_rich
# [assignment]: typer types `ctx` as its vendored click's Context, a private module; typer.Context subclasses it
typer.core.TyperOption.display_type_rich = _flag_type_shown  # type: ignore[method-assign,assignment]

app = typer.Typer(
    name="vaultbot",
    help="Adaptive ERC-4626 vault: devnet, keeper, models, backtests and depositor tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(devnet_app, name="devnet")
app.add_typer(keeper_app, name="keeper")
app.add_typer(model_app, name="model")
app.add_typer(backtest_app, name="backtest")
app.add_typer(data_app, name="data")
app.add_typer(vault_app, name="vault")
app.add_typer(web_app, name="web")
app.add_typer(decisions_app, name="decisions")
app.command()(demo)
app.command()(verify)
