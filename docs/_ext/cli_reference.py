"""Render an argparse parser (and its sub-commands) as documentation at build time.

    ```{cli-reference} napari_lfdeblur.cli:build_parser
    ```

Each sub-command gets a section with the label ``cli-<prog>-<command>``
(``{ref}`cli-lfdeblur-deblur```).

The page is made from the parser object itself, so it always matches the
installed command.  Help strings are shown as plain text (never parsed as
reStructuredText/Markdown), so no option help can break the docs build.
"""

from __future__ import annotations

import argparse
import importlib

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


def _load(spec: str) -> argparse.ArgumentParser:
    module, _, func = spec.partition(":")
    if not func:
        raise ValueError(f"{spec!r}: write module:function, e.g. napari_lfdeblur.cli:build_parser")
    return getattr(importlib.import_module(module), func)()


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    formatter = parser._get_formatter()
    try:
        return formatter._expand_help(action)  # fills in %(default)s, %(choices)s, ...
    except (TypeError, ValueError, KeyError):
        return action.help


def _invocation(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    if action.nargs in ("+", "*"):
        metavar = f"{metavar} [{metavar} ...]"
    return f"{', '.join(action.option_strings)} {metavar}"


def _extras(action: argparse.Action, help_text: str) -> list[str]:
    notes = []
    if action.option_strings and action.required:
        notes.append("required")
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        notes.append("one of: " + ", ".join(str(c) for c in action.choices))
    default = action.default
    if (action.option_strings and action.nargs != 0 and default not in (None, argparse.SUPPRESS)
            and "default" not in help_text.lower()):
        notes.append(f"default: {default}")
    return notes


def _argument_list(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> nodes.definition_list:
    dl = nodes.definition_list(classes=["cli-arguments"])
    for action in actions:
        text = _help(parser, action)
        item = nodes.definition_list_item()
        item += nodes.term("", "", nodes.literal(text=_invocation(action)))
        body = nodes.definition()
        para = nodes.paragraph(text=text)
        notes = _extras(action, text)
        if notes:
            para += nodes.Text((" " if text else "") + "(" + "; ".join(notes) + ")")
        body += para
        item += body
        dl += item
    return dl


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name)


class CliReference(SphinxDirective):
    required_arguments = 1
    has_content = False
    option_spec = {"no-usage": directives.flag}

    def _section(self, title: str, ident: str) -> nodes.section:
        # an explicit target: pages can link here with {ref}`cli-lfdeblur-deblur`
        label = nodes.make_id(f"cli-{ident}")
        section = nodes.section(ids=[nodes.make_id(ident)], names=[label])
        section += nodes.title(text=title)
        self.state.document.note_explicit_target(section)
        return section

    def _describe(self, parser: argparse.ArgumentParser, container: nodes.Element) -> None:
        container += nodes.literal_block(text=parser.format_usage().strip(), language="text")
        positionals = [a for a in parser._actions
                       if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
        options = [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]
        if positionals:
            container += nodes.rubric(text="Arguments")
            container += _argument_list(parser, positionals)
        if options:
            container += nodes.rubric(text="Options")
            container += _argument_list(parser, options)

    def run(self) -> list[nodes.Node]:
        parser = _load(self.arguments[0])
        prog = parser.prog
        out: list[nodes.Node] = []
        if parser.description:
            out.append(nodes.paragraph(text=parser.description))
        top = nodes.container()
        self._describe(parser, top)
        out.extend(top.children)

        commands = list(_subcommands(parser))
        if commands:
            summary = nodes.bullet_list()
            for name, _sub, help_text in commands:
                para = nodes.paragraph()
                ref = nodes.reference("", "", nodes.literal(text=f"{prog} {name}"),
                                      refid=nodes.make_id(f"{prog}-{name}"))
                para += ref
                if help_text:
                    para += nodes.Text(f": {help_text}")
                summary += nodes.list_item("", para)
            out.append(nodes.rubric(text="Sub-commands"))
            out.append(summary)
        for name, sub, help_text in commands:
            section = self._section(f"{prog} {name}", f"{prog}-{name}")
            text = sub.description or help_text
            if text:
                section += nodes.paragraph(text=text)
            self._describe(sub, section)
            out.append(section)
        return out


def setup(app):
    app.add_directive("cli-reference", CliReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
