/// The page and its assets, embedded in the binary (nothing is fetched from another origin; no build
/// step). Hand-written: one HTML file, one stylesheet, one script.
enum WebAssets {
    struct Asset: Sendable {
        var path: String
        var contentType: String
        var body: String
    }

    static let all = [
        Asset(path: "/", contentType: "text/html; charset=utf-8", body: index),
        Asset(path: "/app.css", contentType: "text/css; charset=utf-8", body: css),
        Asset(path: "/app.js", contentType: "text/javascript; charset=utf-8", body: script),
    ]

    static let index = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Oxydra</title>
        <link rel="stylesheet" href="/app.css">
        <script type="module" src="/app.js"></script>
        </head>
        <body>
        <div id="login" class="login" hidden>
          <form id="login-form">
            <h1>Oxydra</h1>
            <label for="token">Access token (printed by <code>runner web</code>)</label>
            <input id="token" type="password" autocomplete="current-password" required>
            <button type="submit">Log in</button>
            <p id="login-error" class="error" role="alert"></p>
          </form>
        </div>
        <div id="app" class="app" hidden>
          <header>
            <strong class="brand">Oxydra</strong>
            <label class="visually-hidden" for="user">User</label>
            <select id="user" aria-label="User"></select>
            <span id="guest" class="guest" aria-live="polite"></span>
            <button id="start" type="button">Start</button>
            <button id="stop" type="button">Stop</button>
            <button id="restart" type="button">Restart</button>
            <button id="show-logs" type="button" aria-expanded="false">Logs</button>
            <button id="show-usage" type="button">Usage</button>
            <button id="show-config" type="button">Config</button>
            <button id="theme" type="button" aria-label="Switch between dark and light">◐</button>
          </header>
          <section id="panel" class="panel" hidden aria-live="polite">
            <div class="panel-bar">
              <label>Log <select id="log-role"><option>runtime</option><option>stderr</option><option>sidecar</option></select></label>
              <label><input id="log-follow" type="checkbox" checked> follow</label>
              <button id="close-panel" type="button">Close</button>
            </div>
            <pre id="panel-text"></pre>
            <div id="config" class="config" hidden>
              <div class="config-bar">
                <label>File <select id="config-file"></select></label>
                <span id="config-path" class="muted"></span>
                <form id="add-user" class="inline-form">
                  <label for="new-user">New user</label>
                  <input id="new-user" placeholder="user id" autocomplete="off" required>
                  <button type="submit">Add user</button>
                </form>
                <button id="close-config" type="button">Close</button>
              </div>
              <details id="config-check"><summary>runner config check</summary><pre id="config-check-text"></pre></details>
              <ul id="config-issues" class="issues" role="alert"></ul>
              <form id="config-form" class="config-form" novalidate>
                <div id="config-fields"></div>
                <div class="config-actions">
                  <button id="config-save" type="submit">Save</button>
                  <button id="config-reset" type="button">Discard changes</button>
                  <span id="config-status" role="status"></span>
                </div>
              </form>
            </div>
          </section>
          <nav aria-label="Sessions">
            <button id="new-session" type="button">New session</button>
            <button id="rename-session" type="button">Rename</button>
            <button id="archive-session" type="button">Archive</button>
            <ul id="sessions"></ul>
          </nav>
          <main>
            <section id="setup" class="setup" hidden aria-labelledby="setup-title">
              <h2 id="setup-title">Set up a model provider</h2>
              <p id="setup-message"></p>
              <form id="setup-form" class="setup-form">
                <label>Provider <select id="setup-kind">
                  <option value="openai">OpenAI</option><option value="anthropic">Anthropic</option>
                  <option value="gemini">Google Gemini</option>
                  <option value="openai_compatible">OpenAI-compatible server (Ollama, llama.cpp, vLLM)</option>
                </select></label>
                <label id="setup-url-row" hidden>Base URL <input id="setup-url" placeholder="http://127.0.0.1:11434"></label>
                <label>Model <input id="setup-model" required></label>
                <label>API key <input id="setup-key" type="password" autocomplete="off" placeholder="optional for a local server"></label>
                <div class="config-actions">
                  <button id="setup-test" type="button">Test</button>
                  <button id="setup-save" type="submit">Save</button>
                  <span id="setup-status" role="status"></span>
                </div>
              </form>
            </section>
            <div id="messages" class="messages" aria-live="polite"></div>
            <div id="progress" class="progress" aria-live="polite"></div>
            <form id="composer" class="composer">
              <label class="visually-hidden" for="prompt">Message</label>
              <textarea id="prompt" rows="2" placeholder="Message (Enter sends, Shift+Enter new line)"></textarea>
              <label class="attach">Attach<input id="file" type="file" aria-label="Attach a file"></label>
              <button id="send" type="submit">Send</button>
              <button id="cancel" type="button" hidden>Cancel</button>
            </form>
          </main>
        </div>
        </body>
        </html>
        """#

    static let css = #"""
        :root { --bg: #fafafa; --fg: #1d1d1f; --muted: #6b6b70; --card: #fff; --line: #ddd; --accent: #2f6fde;
          --warn: #b35c00; --bad: #c0392b; --good: #1e8449; font-family: system-ui, sans-serif; }
        @media (prefers-color-scheme: dark) { :root:not([data-theme=light]) { --bg: #16171a; --fg: #e8e8ea;
          --muted: #9a9aa0; --card: #1f2024; --line: #34353a; } }
        :root[data-theme=dark] { --bg: #16171a; --fg: #e8e8ea; --muted: #9a9aa0; --card: #1f2024; --line: #34353a; }
        * { box-sizing: border-box; }
        body { margin: 0; background: var(--bg); color: var(--fg); }
        [hidden] { display: none !important; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        button, select, input, textarea { font: inherit; color: inherit; background: var(--card);
          border: 1px solid var(--line); border-radius: 6px; padding: .4em .7em; }
        button { cursor: pointer; } button:focus-visible, textarea:focus-visible { outline: 2px solid var(--accent); }
        .login { display: grid; place-items: center; min-height: 100vh; }
        .login form { display: grid; gap: .6em; width: min(22em, 90vw); }
        .error { color: var(--bad); min-height: 1.2em; }
        .app { display: grid; grid-template-columns: 16em 1fr; grid-template-rows: auto 1fr; height: 100vh; }
        header { grid-column: 1 / -1; display: flex; flex-wrap: wrap; gap: .5em; align-items: center; padding: .5em;
          border-bottom: 1px solid var(--line); }
        .brand { margin-right: .5em; } .guest { color: var(--muted); flex: 1; }
        nav { border-right: 1px solid var(--line); overflow: auto; padding: .5em; }
        nav ul { list-style: none; padding: 0; margin: .5em 0; }
        nav li button { width: 100%; text-align: left; border: none; margin-bottom: 2px; overflow: hidden;
          text-overflow: ellipsis; white-space: nowrap; }
        nav li button[aria-current=true] { background: var(--accent); color: #fff; }
        main { display: grid; grid-template-rows: auto 1fr auto auto; min-height: 0; }
        .messages { overflow: auto; padding: 1em; display: flex; flex-direction: column; gap: .7em; }
        .msg { max-width: 52em; line-height: 1.45; overflow-wrap: anywhere; }
        .msg.user { align-self: flex-end; background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          padding: .5em .8em; white-space: pre-wrap; }
        .msg.error { color: var(--bad); } .msg.note { color: var(--muted); font-size: .9em; }
        .msg pre { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6em;
          overflow: auto; position: relative; } .msg pre button { position: absolute; top: .3em; right: .3em; }
        .msg table { border-collapse: collapse; } .msg td, .msg th { border: 1px solid var(--line); padding: .2em .5em; }
        details.tool { border: 1px solid var(--line); border-radius: 6px; padding: .3em .6em; font-size: .9em; }
        details.tool pre { white-space: pre-wrap; max-height: 20em; overflow: auto; }
        .tool.failed summary { color: var(--bad); }
        .approval { border: 2px solid var(--warn); border-radius: 8px; padding: .6em; display: grid; gap: .4em; }
        .approval pre { white-space: pre-wrap; max-height: 12em; overflow: auto; margin: 0; }
        .approval .buttons { display: flex; flex-wrap: wrap; gap: .4em; }
        .stats { color: var(--muted); font-size: .85em; } .earlier { align-self: center; }
        .progress { color: var(--muted); padding: 0 1em; min-height: 1.3em; font-size: .9em; }
        .composer { display: flex; gap: .5em; padding: .6em; border-top: 1px solid var(--line); align-items: end; }
        .composer textarea { flex: 1; resize: vertical; }
        .attach input { display: none; } .attach { cursor: pointer; padding: .4em .7em; border: 1px solid var(--line);
          border-radius: 6px; }
        .panel { grid-column: 1 / -1; border-bottom: 1px solid var(--line); padding: .5em; }
        .panel-bar { display: flex; gap: .8em; align-items: center; flex-wrap: wrap; }
        .panel pre { max-height: 40vh; overflow: auto; white-space: pre-wrap; font-size: .85em; margin: .4em 0 0; }
        .app:has(.panel:not([hidden])) { grid-template-rows: auto auto 1fr; }
        .muted { color: var(--muted); font-size: .9em; }
        .config-bar, .inline-form, .config-actions { display: flex; gap: .6em; align-items: center; flex-wrap: wrap; }
        .config-form { max-height: 55vh; overflow: auto; margin-top: .4em; }
        .config details { border-left: 2px solid var(--line); padding-left: .6em; margin: .3em 0; }
        .config summary { cursor: pointer; font-weight: 600; }
        .field { display: grid; grid-template-columns: minmax(10em, 16em) minmax(0, 1fr); gap: .2em .8em; margin: .35em 0;
          align-items: start; }
        .field input, .field select, .field textarea { width: 100%; }
        .field .hint, .field .field-error { grid-column: 2; font-size: .82em; }
        .field .hint { color: var(--muted); } .field-error { color: var(--bad); }
        .field [aria-invalid=true] { border-color: var(--bad); }
        .field.changed label { font-weight: 600; } .field.changed label::after { content: " •"; color: var(--accent); }
        .issues { color: var(--bad); margin: .3em 0; padding-left: 1.2em; }
        .config-actions { position: sticky; bottom: 0; background: var(--bg); padding: .4em 0; }
        .setup { border: 2px solid var(--accent); border-radius: 8px; margin: .6em 1em 0; padding: .4em .8em; }
        .setup h2 { font-size: 1.05em; margin: .2em 0; }
        .setup-form { display: grid; gap: .4em; grid-template-columns: repeat(auto-fit, minmax(14em, 1fr)); align-items: end; }
        .setup-form label { display: grid; gap: .2em; } .setup-form .config-actions { grid-column: 1 / -1; }
        @media (max-width: 700px) { .app { grid-template-columns: 1fr; grid-template-rows: auto auto 1fr; }
          nav { border-right: none; border-bottom: 1px solid var(--line); max-height: 8em; }
          .field { grid-template-columns: 1fr; } .field .hint, .field .field-error { grid-column: 1; } }
        """#
}
