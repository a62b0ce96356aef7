#!/usr/bin/env bash
# Command 1 of the README: builds the library and the tool (release) and runs
# the example C launcher against the library, linked as the README's
# "Linking" section says. The launcher runs in a demo home (a temporary
# directory, removed afterwards) whose ~/.simpletuner/secrets.json holds demo
# values for HF_TOKEN and REPLICATE_API_TOKEN, with REPLICATE_API_TOKEN also
# set in the environment: so the chain is seen answering (the environment
# wins over the file; the webhook secret is set nowhere). No value is printed.
# It needs Rust and a C compiler only, installs nothing, and runs as any user
# (a missing compiler is named with the command that installs it).
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_packages example
say "building libst_secrets and the st-secrets tool (release)"
cargo_build --release
mkdir -p build
say "compiling examples/launcher.c"
cc -std=c11 -Wall -Wextra -Werror -Iinclude examples/launcher.c \
  -Ltarget/release -lst_secrets -Wl,-rpath,"$ST_ROOT/target/release" -o build/launcher

demo_home="$(mktemp -d)"
trap 'rm -rf "$demo_home"' EXIT
mkdir -m 0700 "$demo_home/.simpletuner"
(umask 077 && printf '{\n  "HF_TOKEN": "%s",\n  "REPLICATE_API_TOKEN": "%s"\n}\n' hf_demo_not_a_real_token \
  r8_demo_from_the_file >"$demo_home/.simpletuner/secrets.json")
say "running the launcher in a demo home: ~/.simpletuner/secrets.json has HF_TOKEN and REPLICATE_API_TOKEN;" \
  "REPLICATE_API_TOKEN is also in the environment"
env -u SIMPLETUNER_SECRETS_FILE -u HF_TOKEN -u CLOUD_WEBHOOK_SECRET -u SIMPLETUNER_AWS_SECRET_NAME \
  -u VAULT_ADDR HOME="$demo_home" REPLICATE_API_TOKEN=r8_demo_from_the_environment build/launcher
say "done; the tool is target/release/st-secrets (scripts/install.sh --prefix DIR installs both)"
