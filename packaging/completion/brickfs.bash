# bash completion for brickfs(1)                          -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/brickfs (loaded on demand
# by bash-completion); works without bash-completion's helpers too.

# Mount points of mounted brickfs volumes (type fuse.brickfs in /proc/mounts).
_brickfs_mounts()
{
    local src dir type rest
    [[ -r /proc/mounts ]] || return 0
    while read -r src dir type rest; do
        # /proc/mounts escapes blanks as octal: \040 is a space.
        [[ $type == fuse.brickfs ]] && printf '%b\n' "$dir"
    done </proc/mounts
}

# OME-Zarr space units (--unit, unit=), the common ones first.
_brickfs_units="micrometer nanometer millimeter angstrom meter centimeter picometer attometer decimeter exameter femtometer foot gigameter hectometer inch kilometer megameter mile parsec petameter terameter yard yoctometer yottameter zeptometer zettameter"

# Completes a comma-separated -o list: "mem=2G,fi" -> "mem=2G,first_index=".
_brickfs_mount_options()
{
    local cur=$1 prefix="" last
    local opts="first_index= mem= cache= threads= block= brick= zstd_level= nopyramid pyramid= downsample= voxel_size= unit= ro rw log= verbose nojournal allow_other noauto nofail cache_dir= cache_size= offline auth_file="
    if [[ $cur == *,* ]]; then
        prefix=${cur%,*},
        last=${cur##*,}
    else
        last=$cur
    fi
    # Values that come from a list: "downsample=m" -> "downsample=mean".
    case $last in
        downsample=*) opts="downsample=mean downsample=mode" ;;
        pyramid=*) opts="pyramid=0 pyramid=1" ;;
        unit=*) opts=$(printf 'unit=%s ' $_brickfs_units) ;;
    esac
    local IFS=$'\n'
    COMPREPLY=($(compgen -P "$prefix" -W "${opts// /$'\n'}" -- "$last"))
    # Do not add a space after "key=" so the value can follow.
    [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
    return 0
}

_brickfs_dirs()
{
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -d -- "$1"))
}

_brickfs()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n = || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="mount umount create info status fsck compact cache"
    if ((cword == 1)); then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--version --help" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return 0
    fi

    local cmd=${words[1]}
    # Positional arguments typed so far after the command (values of options
    # that take one are not positional).
    local i npos=0
    for ((i = 2; i < cword; i++)); do
        case ${words[i]} in
            -o | --shape | --dtype | --block | --brick | --zstd-level | --level | --voxel-size | --unit | --downsample | --timeout | --cache-dir) ((i++)) ;;
            -*) ;;
            *) ((npos++)) ;;
        esac
    done

    # Values of the pyramid flags of create and mount.
    case $prev in
        --unit)
            COMPREPLY=($(compgen -W "$_brickfs_units" -- "$cur"))
            return 0
            ;;
        --downsample)
            COMPREPLY=($(compgen -W "mean mode" -- "$cur"))
            return 0
            ;;
        --voxel-size)
            return 0   # a value: Z,Y,X or one number
            ;;
    esac

    case $cmd in
        mount)
            case $prev in
                -o)
                    _brickfs_mount_options "$cur"
                    return 0
                    ;;
            esac
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "-o -f --foreground -v --verbose --voxel-size --unit --downsample --no-pyramid --help" -- "$cur"))
            elif ((npos < 2)); then
                _brickfs_dirs "$cur"   # STORE, then MOUNT
            fi
            ;;
        umount | unmount)
            if [[ $prev == --timeout ]]; then
                return
            elif [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--timeout --help" -- "$cur"))
            elif ((npos < 1)); then
                local IFS=$'\n'
                COMPREPLY=($(compgen -W "$(_brickfs_mounts)" -- "$cur"))
                ((${#COMPREPLY[@]})) || _brickfs_dirs "$cur"
            fi
            ;;
        create)
            case $prev in
                --dtype)
                    COMPREPLY=($(compgen -W "uint8 uint16 int16 uint32 float32" -- "$cur"))
                    return 0
                    ;;
                --shape | --block | --brick | --zstd-level | --level)
                    return 0   # a value: Z,Y,X or a number
                    ;;
            esac
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--shape --dtype --block --brick --zstd-level --voxel-size --unit --downsample --help" -- "$cur"))
            elif ((npos < 1)); then
                _brickfs_dirs "$cur"
            fi
            ;;
        info)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
            elif ((npos < 1)); then
                _brickfs_dirs "$cur"
            fi
            ;;
        fsck)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--repair --deep --json --help" -- "$cur"))
            elif ((npos < 1)); then
                _brickfs_dirs "$cur"
            fi
            ;;
        compact)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--dry-run --help" -- "$cur"))
            elif ((npos < 1)); then
                _brickfs_dirs "$cur"
            fi
            ;;
        cache)
            if [[ $prev == --cache-dir ]]; then
                _brickfs_dirs "$cur"
            elif [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--cache-dir --help" -- "$cur"))
            elif ((npos < 1)); then
                COMPREPLY=($(compgen -W "info clear" -- "$cur"))
            fi
            ;;
        status)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--watch --help" -- "$cur"))
            elif ((npos < 1)); then
                local IFS=$'\n'
                COMPREPLY=($(compgen -W "$(_brickfs_mounts)" -- "$cur"))
                ((${#COMPREPLY[@]})) || _brickfs_dirs "$cur"
            fi
            ;;
        *)
            # `brickfs STORE MOUNT -o OPTIONS`, the form mount.fuse3 runs.
            if [[ $prev == -o ]]; then
                _brickfs_mount_options "$cur"
            elif ((npos < 1)); then
                _brickfs_dirs "$cur"
            fi
            ;;
    esac
    return 0
} &&
    complete -F _brickfs brickfs

# ex: filetype=sh
