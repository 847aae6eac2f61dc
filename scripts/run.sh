#!/usr/bin/env bash
# The main job: build Oxydra, set up the example user "alice" from examples/config if this
# directory has no configuration yet, validate it, and start the agent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_swift
ensure_packages "${OXYDRA_APT_PACKAGES[@]}"

log "building (debug)"
swift build
bin=$(swift build --show-bin-path)

if [ ! -f .oxydra/runner.toml ]; then
  log "creating .oxydra/ for the example user alice from examples/config"
  mkdir -p .oxydra/users
  cp examples/config/runner.toml .oxydra/runner.toml
  cp examples/config/runner-user.toml .oxydra/users/alice.toml
  [ -f .oxydra/agent.toml ] || cp examples/config/agent.toml .oxydra/agent.toml
fi

log "checking configuration (runner config check)"
check=$("$bin/runner" config check --config .oxydra/runner.toml) || { printf '%s\n' "$check"; exit 1; }
printf '%s\n' "$check"

if printf '%s' "$check" | grep -q "^warning: no API key"; then
  cat >&2 <<'MSG'

No API key is configured for the selected provider. Do one of:
  * export OPENAI_API_KEY=sk-...   (the example selects provider "openai", model "gpt-4o-mini";
    for Anthropic or Gemini export ANTHROPIC_API_KEY / GEMINI_API_KEY and set
    OXYDRA__SELECTION__PROVIDER=anthropic OXYDRA__SELECTION__MODEL=claude-haiku-4-5)
  * put the key in .oxydra/providers.toml:
        [providers.openai]
        api_key = "sk-..."
  * use a local OpenAI-compatible server (Ollama, llama.cpp, vLLM); put in .oxydra/providers.toml:
        [selection]
        provider = "local"
        model = "llama3.1:8b"
        [providers.registry.local]
        provider_type = "openai"
        base_url = "http://127.0.0.1:11434/v1"
        skip_catalog_validation = true
Then run scripts/run.sh again.
MSG
  exit 2
fi

log "effective configuration: $bin/runner config show --sources"
log "starting the agent for alice: $bin/runner --config .oxydra/runner.toml --user alice --insecure"
"$bin/runner" --config .oxydra/runner.toml --user alice --insecure

if [ -t 0 ] && [ -t 1 ]; then
  log "opening the terminal UI ($bin/runner --tui); Ctrl+C exits it, the agent keeps running"
  log "stop the agent with: $bin/runner stop"
  exec "$bin/runner" --config .oxydra/runner.toml --user alice --tui
fi
cat >&2 <<MSG
The agent is running (no terminal here, so the terminal UI was not opened). Talk to it with
  $bin/runner ask "What can you do?"
open the terminal UI with
  $bin/runner --tui
and stop it with
  $bin/runner stop
MSG
