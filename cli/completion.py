"""Shell completion for ``hyperctl``, generated from its parser: subcommands, flags, the choices
of a flag, and job ids (``hyperctl query -quiet``) where a command takes one.

``hyperctl completion bash`` prints a bash function; ``zsh`` prints the same behind zsh's
``bashcompinit``. Generated, so a new subcommand or flag completes without touching this file.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field

# Where a command takes a job id (``JOB_ID``), completion offers the ids of the jobs listed.
JOB_ID_METAVAR = "JOB_ID"


@dataclass
class Level:
    """One command of the tree (``""``, ``"schedules"``, ``"schedules create"``)."""

    commands: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    # A flag's values: its choices, or JOB_ID_METAVAR for job ids.
    values: dict[str, list[str] | str] = field(default_factory=dict)
    # Flags followed by a value (completion then offers none of the flags or commands).
    takes_value: list[str] = field(default_factory=list)
    job_id_argument: bool = False
    # The first positional argument's choices (``completion bash``).
    argument_choices: list[str] = field(default_factory=list)


def command_tree(parser: argparse.ArgumentParser, path: str = "") -> dict[str, Level]:
    """Every command of ``parser``'s tree by its path of subcommand names."""
    level = Level()
    tree = {path: level}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:  # the completion's own flag (query --complete-ids)
            continue
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                level.commands.append(name)
                tree |= command_tree(subparser, f"{path} {name}".strip())
        elif action.option_strings:
            level.flags.extend(action.option_strings)
            if action.nargs != 0:
                level.takes_value.extend(action.option_strings)
                if action.choices:
                    values: list[str] | str = [str(choice) for choice in action.choices]
                elif action.metavar == JOB_ID_METAVAR:
                    values = JOB_ID_METAVAR
                else:
                    continue
                for flag in action.option_strings:
                    level.values[flag] = values
        elif action.metavar == JOB_ID_METAVAR:
            level.job_id_argument = True
        elif action.choices and not level.argument_choices:
            level.argument_choices = [str(choice) for choice in action.choices]
    return tree


def _words(words: list[str]) -> str:
    return shlex.quote(" ".join(words))


def bash_script(parser: argparse.ArgumentParser) -> str:
    """A bash completion function for ``parser.prog`` (``complete -F``)."""
    prog = parser.prog
    name = "_" + "".join(c if c.isalnum() else "_" for c in prog)
    tree = command_tree(parser)
    levels, values = [], []
    for path, level in tree.items():
        levels.append(
            f"        {shlex.quote(path)}) commands={_words(level.commands)}; flags={_words(level.flags)}; "
            f"takes_value={_words(level.takes_value)}; job_id_argument={int(level.job_id_argument)}; "
            f"argument_choices={_words(level.argument_choices)};;"
        )
        for flag, choices in level.values.items():
            text = "@job-ids" if choices == JOB_ID_METAVAR else " ".join(choices)
            values.append(f"        {shlex.quote(path + '|' + flag)}) echo {shlex.quote(text)};;")
    return f"""# {prog} completion for bash: source <({prog} completion bash)
{name}_level() {{
    case "$1" in
{chr(10).join(levels)}
        *) commands=""; flags=""; takes_value=""; job_id_argument=0; argument_choices="";;
    esac
}}

{name}_values() {{
    case "$1" in
{chr(10).join(values)}
    esac
}}

{name}_words() {{
    # bash splits the line at COMP_WORDBREAKS, ":" and "=" among them: "--daemon-url http://h:8080"
    # arrives as "--daemon-url" "http" ":" "//h" ":" "8080". Pieces with no blank between them
    # in COMP_LINE (up to the cursor) are one word again: words and cword, as COMP_WORDS/COMP_CWORD.
    words=() cword=0
    local line="${{COMP_LINE:0:${{COMP_POINT:-${{#COMP_LINE}}}}}}" pos=0 i piece blank
    if [[ -z "${{COMP_LINE-}}" ]]; then
        words=("${{COMP_WORDS[@]}}"); cword=$COMP_CWORD; return 0
    fi
    for ((i = 0; i <= COMP_CWORD; i++)); do
        piece="${{COMP_WORDS[i]}}" blank=0
        while [[ "${{line:pos:1}}" == [[:space:]] ]]; do pos=$((pos + 1)); blank=1; done
        if [[ "${{line:pos:${{#piece}}}}" == "$piece" ]]; then pos=$((pos + ${{#piece}})); fi
        if ((i > 0 && !blank)); then
            words[${{#words[@]}} - 1]+="$piece"
        else
            words+=("$piece")
        fi
    done
    cword=$((${{#words[@]}} - 1))
}}

{name}_job_ids() {{
    # The newest jobs' ids starting with the word typed, one a line, from the daemon given on the
    # command line (or the environment's, or the local jobs); no errors shown. The daemon's text
    # is never expanded as shell words (an id reading $(...) stays text): read line by line.
    local id
    while IFS= read -r id; do
        [[ -n "$id" && "$id" == "$cur"* ]] && COMPREPLY+=("$id")
    done < <("${{words[0]}}" "${{connection[@]}}" query --complete-ids="$cur" 2>/dev/null)
}}

{name}() {{
    # Not `path`: zsh ties that name to $PATH.
    local -a words=()
    local cword=0
    {name}_words
    local cur="${{words[cword]}}" prev="" cmd_path="" word i commands flags takes_value job_id_argument argument_choices
    local -a positionals=() connection=()
    local skip=0
    {name}_level ""
    for ((i = 1; i < cword; i++)); do
        word="${{words[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            -daemon-url=*|--daemon-url=*|-token-file=*|--token-file=*) connection+=("$word"); continue;;
            -daemon-url|--daemon-url|-token-file|--token-file)
                ((i + 1 < cword)) && connection+=("$word" "${{words[i + 1]}}"); skip=1; continue;;
            -*=*) continue;;
            -*) case " $takes_value " in *" $word "*) skip=1;; esac; continue;;
        esac
        case " $commands " in
            *" $word "*) cmd_path="${{cmd_path:+$cmd_path }}$word"; {name}_level "$cmd_path";;
            *) positionals+=("$word");;
        esac
    done
    COMPREPLY=()
    if ((skip)); then
        prev="${{words[cword - 1]}}"
        local offered
        offered="$({name}_values "$cmd_path|$prev")"
        if [[ "$offered" == "@job-ids" ]]; then
            {name}_job_ids
        else
            COMPREPLY=($(compgen -W "$offered" -- "$cur"))
        fi
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -n "$commands" ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    elif ((${{#positionals[@]}} > 0)); then
        :  # the command's one argument is given
    elif ((job_id_argument)); then
        {name}_job_ids
    elif [[ -n "$argument_choices" ]]; then
        COMPREPLY=($(compgen -W "$argument_choices" -- "$cur"))
    fi
    return 0
}}

complete -F {name} {prog}
"""


def zsh_script(parser: argparse.ArgumentParser) -> str:
    """The bash function through zsh's bash-completion emulation (``bashcompinit``)."""
    prog = parser.prog
    return (
        f"#compdef {prog}\n# {prog} completion for zsh: source <({prog} completion zsh)\n"
        "autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(parser).split("\n", 1)[1]
    )


SCRIPTS = {"bash": bash_script, "zsh": zsh_script}
