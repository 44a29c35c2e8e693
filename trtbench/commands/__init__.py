"""One module per subcommand; `trtbench.cli` wires them into the typer app."""
