# bash completion for migctl(1): commands, subcommands and options.
# Installed as share/bash-completion/completions/migctl.

_migctl()
{
    local cur prev words cword cmd i opts
    _init_completion -s 2>/dev/null || {
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    }

    cmd=
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -c|--config|--scope) ((i++)) ;;
            -*) ;;
            *) cmd=${words[i]}; break ;;
        esac
    done

    case $prev in
        -c|--config|--sql|--traceback|--plan|--previous-plan|--out|\
        --runs-dir)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
    esac

    case $cmd in
        '')
            opts="-c --config --json --scope --version --help maintenance
                  migrations inspect verify classify diagnose locks run
                  health evidence" ;;
        maintenance)
            opts="on off status --reason --release --retry-after --wait
                  --force --json --help" ;;
        migrations)  opts="--plan --previous-plan --json --help" ;;
        inspect)     opts="--sql --app --migration --json --help" ;;
        verify)      opts="--app --json --help" ;;
        classify)    opts="--json --help"
                     COMPREPLY=($(compgen -f -- "$cur")) ;;
        diagnose)
            opts="--app --migration --sql --traceback --plan --previous-plan
                  --json --help" ;;
        locks)       opts="--long --all-databases --json --help" ;;
        run)
            opts="--maintenance-on-failure --diagnose --wait-lock
                  --lock-timeout --statement-timeout --retries --plan-cmd
                  --runs-dir --help --" ;;
        health)      opts="--json --help" ;;
        evidence)
            opts="--out --sql --traceback --plan --json --help" ;;
    esac

    COMPREPLY+=($(compgen -W "$opts" -- "$cur"))
}

complete -F _migctl migctl
