import { Argument, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import { OUTPUT_FORMATS } from '../output.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

/** What can follow each command path (`""` is `cilia` itself): subcommands, aliases, an argument's choices, flags. */
export function completionWords(program: Command): Map<string, string[]> {
  const words = new Map<string, string[]>();
  const walk = (command: Command, path: string[]) => {
    const subcommands = command.commands.flatMap((c) => [c.name(), ...c.aliases()]);
    const choices = command.registeredArguments.flatMap((a) => a.argChoices ?? []);
    const flags = command.options.flatMap((o) => [o.short, o.long].filter((f): f is string => !!f));
    words.set(path.join(' '), [...subcommands, ...choices, ...flags, '--help']);
    for (const c of command.commands) for (const name of [c.name(), ...c.aliases()]) walk(c, [...path, name]);
  };
  walk(program, []);
  return words;
}

/** The completion script of `shell` for `program`'s command tree. */
export function completionScript(program: Command, shell: Shell): string {
  const words = completionWords(program);
  if (shell === 'fish') return fishScript(words);
  const entries = [...words].map(([path, ws]) => `  [${JSON.stringify(` ${path}`.trimEnd() || ' ')}]=${JSON.stringify(ws.join(' '))}`);
  const bash = `# cilia completion for bash (eval "$(cilia completion bash)", or save it under bash-completion's completions/)
declare -A _cilia_words=(
${entries.join('\n')}
)
_cilia() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} path=' ' w i
  if [[ $prev == -o || $prev == --output ]]; then
    COMPREPLY=($(compgen -W "${OUTPUT_FORMATS.join(' ')}" -- "$cur"))
    return
  fi
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    [[ $path == ' ' ]] && w=" $w" || w="$path $w"
    [[ -n \${_cilia_words[$w]+x} ]] && path=$w
  done
  COMPREPLY=($(compgen -W "\${_cilia_words[$path]}" -- "$cur"))
}
complete -F _cilia cilia
`;
  if (shell === 'bash') return bash;
  return `#compdef cilia
# cilia completion for zsh (source <(cilia completion zsh)): the bash completion through bashcompinit
autoload -U +X bashcompinit && bashcompinit
${bash}`;
}

function fishScript(words: Map<string, string[]>): string {
  const lines = [
    '# cilia completion for fish (cilia completion fish | source, or save it as ~/.config/fish/completions/cilia.fish)',
    'function __cilia_path',
    '    set -l path',
    '    for w in (commandline -opc)[2..-1]',
    '        string match -q -- "-*" $w; and continue',
    `        contains -- (string join ' ' $path $w) ${[...words.keys()].filter(Boolean).map((p) => `'${p}'`).join(' ')}; and set path $path $w`,
    '    end',
    "    string join ' ' $path",
    'end',
    "complete -c cilia -f",
  ];
  for (const [path, ws] of words) {
    const subcommands = ws.filter((w) => !w.startsWith('-'));
    if (subcommands.length) lines.push(`complete -c cilia -n 'test "(__cilia_path)" = "${path}"' -a '${subcommands.join(' ')}'`);
    for (const flag of ws.filter((w) => w.startsWith('--'))) lines.push(`complete -c cilia -n 'test "(__cilia_path)" = "${path}"' -l ${flag.slice(2)}`);
  }
  return lines.join('\n') + '\n';
}

/** `cilia completion bash|zsh|fish`: the shell completion script for every command and flag. */
export function registerCompletionCommand(program: Command, ctx: CommandContext): void {
  program
    .command('completion')
    .description('print the shell completion script: eval "$(cilia completion bash)", source <(cilia completion zsh), cilia completion fish | source')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .action((shell: Shell) => {
      ctx.io.stdout.write(completionScript(program, shell));
    });
}
