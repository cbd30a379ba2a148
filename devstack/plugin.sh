# devstack/plugin.sh: devstack sources this at each phase as
#   source plugin.sh MODE [PHASE]
# and it only hands over to the functions in lib/volworker.
#
# shellcheck shell=bash

# shellcheck source=devstack/lib/volworker
source "$VOLWORKER_DIR/devstack/lib/volworker"

if is_service_enabled volworker; then
    case "$1/${2:-}" in
        stack/install)
            echo_summary "Installing volworker"
            install_volworker
            ;;
        stack/post-config)
            echo_summary "Configuring volworker"
            configure_volworker
            ;;
        stack/extra)
            echo_summary "Starting volworker"
            init_volworker
            start_volworker
            ;;
        unstack/*)
            stop_volworker
            ;;
        clean/*)
            cleanup_volworker
            ;;
    esac
fi
