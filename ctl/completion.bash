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
            -c|--config|--scope|--lock-timeout|--statement-timeout)
                ((i++)) ;;
            -*) ;;
            *) cmd=${words[i]}; break ;;
        esac
    done

    case $prev in
        -c|--config|--sql|--traceback|--plan|--previous-plan|--out|\
        --runs-dir|--from)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
    esac

    # every command and option of ctl/main.c and each command's
    # migctl_opt_t table (t/help.t checks)
    case $cmd in
        '')
            opts="-c --config --json --scope --lock-timeout
                  --statement-timeout --version --help maintenance
                  migrations inspect verify classify diagnose locks run
                  health evidence help" ;;
        help)
            opts="maintenance migrations inspect verify classify diagnose
                  locks run health evidence" ;;
        maintenance)
            opts="on off status --reason --release --retry-after --wait
                  --force --any-scope --json --help" ;;
        migrations)
            opts="--plan --previous-plan --manage --previous-manage --timeout
                  --lock-timeout --statement-timeout --json --help" ;;
        inspect)
            opts="--sql --app --migration --lock-timeout --statement-timeout
                  --json --help" ;;
        verify)
            opts="--app --manage --timeout --from --print-script
                  --lock-timeout --statement-timeout --json --help" ;;
        classify)    opts="--json --help"
                     COMPREPLY=($(compgen -f -- "$cur")) ;;
        diagnose)
            opts="--app --migration --sql --traceback --plan --previous-plan
                  --manage --previous-manage --lock-timeout
                  --statement-timeout --json --help" ;;
        locks)
            opts="--long --all-databases --lock-timeout --statement-timeout
                  --json --help" ;;
        run)
            opts="--maintenance-on-failure --diagnose --wait-lock
                  --lock-timeout --statement-timeout --retries --plan-cmd
                  --runs-dir --json --help --" ;;
        health)      opts="--json --help" ;;
        evidence)
            opts="--out --sql --traceback --plan --previous-plan --app
                  --migration --runs-dir --runs --manage --previous-manage
                  --lock-timeout --statement-timeout --json --help" ;;
    esac

    COMPREPLY+=($(compgen -W "$opts" -- "$cur"))
}

complete -F _migctl migctl
