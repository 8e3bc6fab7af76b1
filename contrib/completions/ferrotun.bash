# bash completion for ferrotun, and for the wg and wg-quick names it answers to.
# Install as /usr/share/bash-completion/completions/ferrotun (and link wg, wg-quick to it).

_ferrotun_configs() {
	local f
	for f in /etc/wireguard/*.conf; do
		[[ -e $f ]] || continue
		f=${f##*/}
		echo "${f%.conf}"
	done
}

_ferrotun_running() {
	local s
	for s in /var/run/wireguard/*.sock; do
		[[ -S $s ]] || continue
		s=${s##*/}
		echo "${s%.sock}"
	done
}

# Completes the word after a wg-quick verb: config names, or .conf files by path.
_ferrotun_quick_target() {
	local verb=$1 cur=$2
	case $verb in
	up|strip) COMPREPLY=( $(compgen -W "$(_ferrotun_configs)" -- "$cur") ) ;;
	down|save) COMPREPLY=( $(compgen -W "$(_ferrotun_running)" -- "$cur") ) ;;
	esac
	if [[ $cur == */* || ${#COMPREPLY[@]} -eq 0 ]]; then
		compopt -o filenames 2>/dev/null
		COMPREPLY+=( $(compgen -f -X '!*.conf' -- "$cur") $(compgen -d -- "$cur") )
	fi
}

_ferrotun_wg_args() {
	local cmd=$1 cur=$2 prev=$3 nargs=$4
	case $cmd in
	show)
		if [[ $nargs -eq 0 ]]; then
			COMPREPLY=( $(compgen -W "all interfaces $(_ferrotun_running)" -- "$cur") )
		elif [[ $nargs -eq 1 && $prev != interfaces ]]; then
			COMPREPLY=( $(compgen -W "public-key private-key listen-port fwmark peers preshared-keys endpoints allowed-ips latest-handshakes persistent-keepalive transfer dump" -- "$cur") )
		fi ;;
	showconf)
		[[ $nargs -eq 0 ]] && COMPREPLY=( $(compgen -W "$(_ferrotun_running)" -- "$cur") ) ;;
	setconf|addconf|syncconf)
		if [[ $nargs -eq 0 ]]; then
			COMPREPLY=( $(compgen -W "$(_ferrotun_running)" -- "$cur") )
		elif [[ $nargs -eq 1 ]]; then
			compopt -o filenames 2>/dev/null
			COMPREPLY=( $(compgen -f -- "$cur") )
		fi ;;
	set)
		if [[ $nargs -eq 0 ]]; then
			COMPREPLY=( $(compgen -W "$(_ferrotun_running)" -- "$cur") )
		else
			case $prev in
			private-key|preshared-key) compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -f -- "$cur") ) ;;
			listen-port|fwmark|endpoint|allowed-ips|persistent-keepalive|peer) ;;
			*) COMPREPLY=( $(compgen -W "listen-port fwmark private-key peer remove preshared-key endpoint persistent-keepalive allowed-ips" -- "$cur") ) ;;
			esac
		fi ;;
	esac
}

_ferrotun() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local prog=${COMP_WORDS[0]##*/}
	COMPREPLY=()
	local quick="up down save strip"
	local wg="show showconf set setconf addconf syncconf genkey genpsk pubkey"
	case $prog in
	wg-quick)
		if [[ $COMP_CWORD -eq 1 ]]; then
			COMPREPLY=( $(compgen -W "$quick" -- "$cur") )
		elif [[ $COMP_CWORD -eq 2 ]]; then
			_ferrotun_quick_target "$prev" "$cur"
		fi
		return ;;
	wg)
		if [[ $COMP_CWORD -eq 1 ]]; then
			COMPREPLY=( $(compgen -W "$wg" -- "$cur") )
		else
			_ferrotun_wg_args "${COMP_WORDS[1]}" "$cur" "$prev" $((COMP_CWORD - 2))
		fi
		return ;;
	esac
	if [[ $COMP_CWORD -eq 1 ]]; then
		COMPREPLY=( $(compgen -W "$quick $wg demo -f --foreground --help --version" -- "$cur") )
		return
	fi
	case ${COMP_WORDS[1]} in
	up|down|save|strip) [[ $COMP_CWORD -eq 2 ]] && _ferrotun_quick_target "${COMP_WORDS[1]}" "$cur" ;;
	show|showconf|set|setconf|addconf|syncconf) _ferrotun_wg_args "${COMP_WORDS[1]}" "$cur" "$prev" $((COMP_CWORD - 2)) ;;
	esac
}

complete -F _ferrotun ferrotun wg wg-quick
