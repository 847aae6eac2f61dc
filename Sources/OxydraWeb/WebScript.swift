extension WebAssets {
    /// The page's script: login, guests, sessions, the chat over the proxied gateway protocol
    /// (docs/protocol.md), approvals. Model and tool text only ever reaches the page as text nodes
    /// or through `markdown()`, which escapes everything and allows only http(s) links.
    static let script = #"""
        const $ = (id) => document.getElementById(id);
        const state = { user: null, ws: null, session: null, turn: null, live: null, retry: 0, files: [], queue: [] };
        let counter = 0;
        const rid = () => `w${Date.now().toString(36)}${(counter++).toString(36)}`;

        async function api(path, options = {}) {
          const init = { credentials: "same-origin", ...options };
          if (init.body !== undefined) init.headers = { "Content-Type": "application/json" };
          const response = await fetch(path, init);
          const body = await response.json().catch(() => ({}));
          if (!response.ok) throw Object.assign(new Error(body.error?.message ?? response.statusText), { status: response.status });
          return body.data;
        }

        function escapeHTML(text) {
          return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
        }

        function inline(text) {
          return escapeHTML(text)
            .replace(/`([^`]+)`/g, "<code>$1</code>")
            .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
            .replace(/(^|[^*])\*([^*]+)\*/g, "$1<em>$2</em>")
            .replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" rel="noopener noreferrer nofollow" target="_blank">$1</a>');
        }

        /// Markdown as safe HTML: everything escaped first; code blocks, headings, lists, quotes, tables.
        function markdown(source) {
          const out = [];
          const lines = source.split("\n");
          for (let i = 0; i < lines.length; i++) {
            const line = lines[i];
            if (line.startsWith("```")) {
              const code = [];
              for (i++; i < lines.length && !lines[i].startsWith("```"); i++) code.push(lines[i]);
              out.push(`<pre><button type="button" class="copy">Copy</button><code>${escapeHTML(code.join("\n"))}</code></pre>`);
            } else if (/^#{1,6} /.test(line)) {
              const level = line.indexOf(" ");
              out.push(`<h${level + 1}>${inline(line.slice(level + 1))}</h${level + 1}>`);
            } else if (/^\s*([-*]|\d+\.) /.test(line)) {
              const items = [];
              for (; i < lines.length && /^\s*([-*]|\d+\.) /.test(lines[i]); i++) items.push(`<li>${inline(lines[i].replace(/^\s*([-*]|\d+\.) /, ""))}</li>`);
              i--;
              out.push(`<ul>${items.join("")}</ul>`);
            } else if (line.startsWith("> ")) {
              out.push(`<blockquote>${inline(line.slice(2))}</blockquote>`);
            } else if (line.startsWith("|") && lines[i + 1]?.match(/^\|[\s:|-]+\|$/)) {
              const cells = (row) => row.replace(/^\||\|$/g, "").split("|").map((c) => inline(c.trim()));
              const head = cells(line).map((c) => `<th>${c}</th>`).join("");
              const rows = [];
              for (i += 2; i < lines.length && lines[i].startsWith("|"); i++) rows.push(`<tr>${cells(lines[i]).map((c) => `<td>${c}</td>`).join("")}</tr>`);
              i--;
              out.push(`<table><thead><tr>${head}</tr></thead><tbody>${rows.join("")}</tbody></table>`);
            } else if (line.trim() !== "") {
              out.push(`<p>${inline(line)}</p>`);
            }
          }
          return out.join("");
        }

        function message(kind, text, html) {
          const node = document.createElement("div");
          node.className = `msg ${kind}`;
          if (html !== undefined) node.innerHTML = html; else node.textContent = text;
          return node;
        }

        function add(kind, text, html) {
          const node = message(kind, text, html);
          $("messages").append(node);
          node.scrollIntoView({ block: "end" });
          return node;
        }

        // History comes in pages: the latest on arrival, earlier ones as the reader scrolls up.
        function historyNodes(entries) {
          const nodes = [];
          for (const entry of entries) {
            if (entry.role === "user") nodes.push(message("user", entry.text));
            else if (entry.role === "assistant" && entry.text) nodes.push(message("assistant", "", markdown(entry.text)));
            else if (entry.role === "tool") nodes.push(message("note", `↳ ${(entry.tool_names ?? [])[0] ?? "tool"}: ${entry.text}`));
          }
          return nodes;
        }
        function loadEarlier() {
          if (!state.history?.more || state.history.loading) return;
          state.history.loading = true;
          send("get_history", { limit: 50, before: state.history.first });
        }
        function earlierButton() {
          const button = Object.assign(document.createElement("button"), { type: "button", id: "earlier", className: "earlier", textContent: "Load earlier messages" });
          button.onclick = loadEarlier;
          return button;
        }

        /// Sends a frame; before the connection has said hello, it waits in order.
        function send(type, payload) {
          const text = JSON.stringify({ type, payload: { request_id: rid(), ...payload } });
          if (state.ws?.readyState === WebSocket.OPEN && state.ready) state.ws.send(text); else state.queue.push(text);
        }

        function busy(on) {
          $("cancel").hidden = !on;
          $("send").disabled = on;
          if (!on) $("progress").textContent = "";
        }

        function toolCard(tool) {
          const card = document.createElement("details");
          card.className = "tool";
          card.dataset.call = tool.call_id;
          const summary = document.createElement("summary");
          summary.textContent = `⚙ ${tool.summary} — running…`;
          const args = document.createElement("pre");
          args.textContent = tool.arguments ?? "";
          card.append(summary, args);
          $("messages").append(card);
          return card;
        }

        function approvalCard(p) {
          const card = document.createElement("div");
          card.className = "approval";
          card.dataset.approval = p.approval_id;
          const title = document.createElement("strong");
          title.textContent = `Approval needed: ${p.summary}`;
          const reason = document.createElement("span");
          reason.textContent = `${p.reason} · risk ${p.risk}`;
          const details = document.createElement("pre");
          details.textContent = p.details;
          const buttons = document.createElement("div");
          buttons.className = "buttons";
          for (const [label, decision, scope] of [["Allow once", "allow", "once"], [`Allow ${p.kind_label} for this session`, "allow", "session"], ["Always allow", "allow", "always"], ["Deny", "deny", "once"]]) {
            const button = document.createElement("button");
            button.type = "button";
            button.textContent = label;
            button.onclick = () => send("approve", { approval_id: p.approval_id, decision, scope });
            buttons.append(button);
          }
          card.append(title, reason, details, buttons);
          $("messages").append(card);
          card.scrollIntoView({ block: "end" });
        }

        function onFrame(frame) {
          const p = frame.payload ?? {};
          switch (frame.type) {
            case "hello_ack":
              state.session = p.session.session_id;
              document.body.dataset.session = state.session;
              state.ready = true;
              state.retry = 0;
              $("messages").replaceChildren();
              state.history = null;
              send("get_history", { limit: 50 });
              send("list_sessions", { limit: 50 });
              state.turn = p.active_turn?.turn_id ?? null;
              busy(Boolean(p.active_turn));
              for (const text of state.queue.splice(0)) state.ws.send(text);
              break;
            case "session_switched": case "session_created":
              state.session = p.session.session_id;
              state.turn = p.active_turn?.turn_id ?? null;
              busy(Boolean(p.active_turn));
              $("messages").replaceChildren();
              state.history = null;
              send("get_history", { limit: 50 });
              send("list_sessions", { limit: 50 });
              break;
            case "history": {
              if (p.session?.session_id !== state.session) break;
              const box = $("messages");
              const older = state.history?.loading === true;
              $("earlier")?.remove();
              const nodes = historyNodes(p.entries);
              if (older) {
                // Keep what the reader looks at in place while earlier messages appear above it.
                const fromBottom = box.scrollHeight - box.scrollTop;
                box.prepend(...nodes);
                box.scrollTop = box.scrollHeight - fromBottom;
              } else {
                box.prepend(...nodes);
                box.scrollTop = box.scrollHeight;
              }
              state.history = { first: p.first, more: p.truncated, loading: false };
              if (p.truncated) box.prepend(earlierButton());
              break;
            }
            case "session_list": {
              const list = $("sessions");
              list.replaceChildren();
              for (const s of p.sessions) {
                const item = document.createElement("li");
                const button = document.createElement("button");
                button.type = "button";
                button.textContent = s.display_name ?? s.session_id.slice(0, 8);
                button.title = s.session_id;
                button.setAttribute("aria-current", String(s.session_id === state.session));
                button.onclick = () => send("switch_session", { session_id: s.session_id });
                item.append(button);
                list.append(item);
              }
              break;
            }
            case "session_updated": send("list_sessions", { limit: 50 }); break;
            case "turn_started": state.turn = p.turn.turn_id; busy(true); state.live = null; break;
            case "assistant_delta":
              if (!state.live) state.live = { node: add("assistant", ""), text: "" };
              state.live.text += p.delta;
              state.live.node.innerHTML = markdown(state.live.text);
              state.live.node.scrollIntoView({ block: "end" });
              break;
            case "turn_progress": $("progress").textContent = p.progress.message; break;
            case "tool_call": state.live = null; toolCard(p.tool); break;
            case "tool_result": {
              const card = document.querySelector(`details.tool[data-call="${CSS.escape(p.tool.call_id)}"]`) ?? toolCard(p.tool);
              card.querySelector("summary").textContent = `${p.tool.is_error ? "✗" : "✓"} ${card.querySelector("summary").textContent.replace(/^⚙ /, "").replace(/ — running…$/, "")} — ${p.tool.duration_ms} ms`;
              if (p.tool.is_error) card.classList.add("failed");
              const output = document.createElement("pre");
              output.textContent = p.tool.output ?? p.tool.summary;
              card.append(output);
              break;
            }
            case "approval_request":
              if (!document.querySelector(`[data-approval="${CSS.escape(p.approval_id)}"]`)) approvalCard(p);
              break;
            case "approval_resolved": {
              const card = document.querySelector(`[data-approval="${CSS.escape(p.approval_id)}"]`);
              if (card) {
                card.querySelector(".buttons").remove();
                const outcome = document.createElement("span");
                outcome.textContent = p.reason === "answered" ? `${p.decision === "allow" ? "Allowed" : "Denied"} (${p.scope})${p.answered_by ? ` by ${p.answered_by}` : ""}` : p.reason === "timed_out" ? "Not answered in time: denied" : "Cancelled with the turn";
                card.append(outcome);
              }
              break;
            }
            case "turn_completed": {
              // The end of a turn from before this page joined is already in the history.
              if (p.turn.turn_id !== state.turn) break;
              state.turn = null;
              const r = p.response;
              if (!state.live && r.message) add("assistant", "", markdown(r.message));
              const usage = r.usage ? `${r.usage.prompt_tokens ?? "?"} in / ${r.usage.completion_tokens ?? "?"} out tokens` : "";
              const cost = r.cost_usd !== undefined ? ` · $${r.cost_usd.toFixed(4)}` : "";
              add("stats", `${usage}${cost} · ${(r.duration_ms / 1000).toFixed(1)} s${r.model ? ` · ${r.provider}/${r.model}` : ""}`);
              state.live = null;
              busy(false);
              send("list_sessions", { limit: 50 });
              break;
            }
            case "turn_cancelled":
              if (p.turn.turn_id !== state.turn) break;
              state.turn = null;
              add("note", "turn cancelled");
              state.live = null;
              busy(false);
              break;
            case "error":
              add("error", p.message);
              if (p.turn && p.turn.turn_id === state.turn) { state.turn = null; state.live = null; busy(false); }
              break;
          }
        }

        function connect() {
          if (!state.user) return;
          const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/users/${encodeURIComponent(state.user)}/ws`);
          state.ws = ws;
          ws.onopen = () => ws.send(JSON.stringify({ type: "hello", payload: { request_id: rid(), protocol_version: 1, user_id: state.user, session_id: state.session ?? undefined, client: "web" } }));
          ws.onmessage = (event) => onFrame(JSON.parse(event.data));
          ws.onclose = () => {
            if (state.ws !== ws) return;
            state.ready = false;
            delete document.body.dataset.session;
            const wait = Math.min(5000, 250 * 2 ** state.retry++);
            $("progress").textContent = `disconnected; reconnecting in ${(wait / 1000).toFixed(1)} s…`;
            setTimeout(connect, wait);
          };
        }

        async function refreshGuests() {
          try {
            const status = await api("/api/v1/status");
            for (const option of $("user").options) {
              const entry = status.users.find((u) => u.user_id === option.value);
              option.textContent = `${option.value} · ${entry?.running ? "running" : "stopped"}`;
            }
            const mine = status.users.find((u) => u.user_id === state.user);
            const health = mine?.health;
            const degraded = health?.startup_status.degraded_reasons ?? [];
            const channels = Object.entries(health?.channels ?? {});
            $("guest").textContent = !mine?.running ? "guest stopped" : `${health.startup_status.sandbox_tier} · ${health.healthy ? "healthy" : "unhealthy"} · shell ${health.startup_status.shell_available ? "on" : "off"} · up ${health.uptime_secs} s · ${health.open_sessions} sessions open · ${health.active_turns} turns running${channels.map(([name, c]) => ` · ${name} ${c.state}`).join("")}${degraded.length ? ` · degraded: ${degraded.map((r) => r.code).join(", ")}` : ""}`;
            $("guest").title = degraded.map((r) => `${r.code}: ${r.detail}`).concat(channels.filter(([, c]) => c.last_error).map(([name, c]) => `${name}: ${c.last_error}`)).join("\n");
          } catch (error) { $("guest").textContent = error.message; }
        }

        async function control(action) {
          $("guest").textContent = `${action}…`;
          try { await api(`/api/v1/users/${encodeURIComponent(state.user)}/${action}`, { method: "POST", body: "{}" }); }
          catch (error) { add("error", error.message); }
          await refreshGuests();
          if (action !== "stop") { state.ws?.close(); connect(); }
        }

        async function start() {
          const fragment = new URLSearchParams(location.hash.slice(1));
          if (fragment.get("token")) {
            history.replaceState(null, "", location.pathname);
            await api("/api/v1/login", { method: "POST", body: JSON.stringify({ token: fragment.get("token") }) }).catch(() => {});
          }
          let meta;
          try { meta = await api("/api/v1/meta"); } catch (error) {
            if (error.status !== 401) throw error;
            $("login").hidden = false;
            return;
          }
          $("login").hidden = true;
          $("app").hidden = false;
          for (const user of meta.users) $("user").append(new Option(user, user));
          state.user = meta.users[0] ?? null;
          $("user").onchange = () => { state.user = $("user").value; state.session = null; state.ready = false; state.queue = []; state.ws?.close(); connect(); refreshGuests(); };
          connect();
          refreshGuests();
          checkSetup();
          setInterval(refreshGuests, 5000);
        }

        $("login-form").onsubmit = async (event) => {
          event.preventDefault();
          try {
            await api("/api/v1/login", { method: "POST", body: JSON.stringify({ token: $("token").value }) });
            location.reload();
          } catch (error) { $("login-error").textContent = error.message; }
        };
        $("composer").onsubmit = (event) => {
          event.preventDefault();
          const prompt = $("prompt").value.trim();
          if (!prompt) return;
          add("user", prompt);
          send("send_turn", { turn_id: `turn-${rid()}`, prompt, attachments: state.files.length ? state.files : undefined });
          state.files = [];
          $("prompt").value = "";
        };
        $("prompt").onkeydown = (event) => { if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("composer").requestSubmit(); } };
        $("cancel").onclick = () => send("cancel_active_turn", {});
        $("new-session").onclick = () => send("create_session", {});
        $("start").onclick = () => control("start");
        $("stop").onclick = () => control("stop");
        $("restart").onclick = () => control("restart");
        $("theme").onclick = () => { document.documentElement.dataset.theme = document.documentElement.dataset.theme === "dark" ? "light" : "dark"; };
        $("messages").addEventListener("scroll", () => { if ($("messages").scrollTop < 60) loadEarlier(); });
        $("messages").onclick = (event) => { if (event.target.classList.contains("copy")) navigator.clipboard?.writeText(event.target.nextSibling.textContent); };
        let logTimer = null;
        let logOffset = null;
        async function pollLogs() {
          const role = $("log-role").value;
          const query = logOffset === null ? "tail=300" : `tail=5000&offset=${logOffset}`;
          try {
            const data = await api(`/api/v1/users/${encodeURIComponent(state.user)}/logs?role=${role}&${query}`);
            if (logOffset === null) $("panel-text").textContent = "";
            if (data.lines.length) $("panel-text").textContent += data.lines.join("\n") + "\n";
            logOffset = data.next_offset;
            $("panel-text").scrollTop = $("panel-text").scrollHeight;
          } catch (error) { $("panel-text").textContent = error.message; }
        }
        function closePanel() {
          clearInterval(logTimer);
          logTimer = null;
          $("panel").hidden = true;
          for (const id of ["show-logs", "show-config"]) $(id).setAttribute("aria-expanded", "false");
        }
        function openPanel(kind) {
          closePanel();
          $("panel").hidden = false;
          $("panel").querySelector(".panel-bar").hidden = kind !== "logs";
          $("panel-text").hidden = kind === "config";
          $("config").hidden = kind !== "config";
        }
        $("show-logs").onclick = () => {
          openPanel("logs");
          $("show-logs").setAttribute("aria-expanded", "true");
          logOffset = null;
          pollLogs();
          logTimer = setInterval(() => { if ($("log-follow").checked) pollLogs(); }, 2000);
        };
        $("log-role").onchange = () => { logOffset = null; pollLogs(); };
        $("close-panel").onclick = closePanel;
        $("show-usage").onclick = async () => {
          openPanel("usage");
          try {
            const report = await api(`/api/v1/users/${encodeURIComponent(state.user)}/usage?days=30`);
            const row = (r) => `${r.key.padEnd(28)} ${String(r.calls).padStart(5)} calls ${String(r.prompt_tokens).padStart(9)} in ${String(r.completion_tokens).padStart(8)} out  $${Number(r.cost_usd).toFixed(4)}`;
            $("panel-text").textContent = [`since ${report.since} · total $${Number(report.total.cost_usd).toFixed(4)}`, "", "per day:", ...report.days.map(row), "", "per model:", ...report.models.map(row)].join("\n");
          } catch (error) { $("panel-text").textContent = error.message; }
        };
        // Configuration: each file as a form generated from the schema the loaders validate with.
        const cfg = { doc: null, changes: new Map(), rows: new Map(), seq: 0 };
        const renderKey = (k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k));
        const renderPath = (path) => path.map(renderKey).join(".");
        function toTOML(v) {
          if (Array.isArray(v)) return `[${v.map(toTOML).join(", ")}]`;
          if (v !== null && typeof v === "object") return `{ ${Object.keys(v).sort().map((k) => `${renderKey(k)} = ${toTOML(v[k])}`).join(", ")} }`;
          return typeof v === "string" ? JSON.stringify(v) : String(v);
        }
        const scalar = (shape) => ["string", "integer", "number", "version", "choice"].includes(shape.type);
        const shown = (shape, v) => (v === undefined || v === null ? "" : shape.type === "list" && scalar(shape.item) ? v.join("\n") : typeof v === "object" ? toTOML(v) : String(v));

        function group(path, open) {
          const details = document.createElement("details");
          details.open = open;
          const summary = document.createElement("summary");
          summary.textContent = renderPath(path);
          details.append(summary);
          return details;
        }

        function section(parent, shape, path) {
          for (const key of shape.keys) {
            const p = [...path, key.key];
            if (key.shape.type === "section") {
              const d = group(p, false);
              section(d, key.shape, p);
              parent.append(d);
            } else if (key.shape.type === "map" && key.shape.value.type === "section") {
              const d = group(p, false);
              entries(d, key, p);
              parent.append(d);
            } else parent.append(field(key, p));
          }
        }

        function entries(parent, key, path) {
          const prefix = `${renderPath(path)}.`;
          const names = new Set(Object.keys(key.default ?? {}));
          for (const source of [cfg.doc.values, cfg.doc.effective])
            for (const v of Object.values(source)) if (v.path.length > path.length && renderPath(v.path.slice(0, path.length)) + "." === prefix) names.add(v.path[path.length]);
          const add = (name, open) => {
            const d = group([...path, name], open);
            section(d, key.shape.value, [...path, name]);
            parent.insertBefore(d, adder);
          };
          const adder = document.createElement("div");
          adder.className = "inline-form";
          const input = Object.assign(document.createElement("input"), { placeholder: "name of a new entry" });
          input.setAttribute("aria-label", `New entry in ${renderPath(path)}`);
          const button = Object.assign(document.createElement("button"), { type: "button", textContent: "Add entry" });
          button.onclick = () => { const name = input.value.trim(); if (name) { add(name, true); input.value = ""; } };
          adder.append(input, button);
          parent.append(adder);
          for (const name of [...names].sort()) add(name, false);
        }

        function field(key, path) {
          const rendered = renderPath(path);
          const own = cfg.doc.values[rendered];
          const effective = cfg.doc.effective[rendered];
          const shape = key.shape;
          const id = `cfg-${cfg.seq++}`;
          const row = document.createElement("div");
          row.className = "field";
          row.dataset.path = rendered;
          const label = Object.assign(document.createElement("label"), { htmlFor: id, textContent: key.key + (key.required ? " (required)" : "") });
          let input;
          if (key.secret) {
            input = Object.assign(document.createElement("input"), { type: "password", autocomplete: "off", placeholder: own?.set ? "set (write-only) — type to replace, clear to remove" : "not set" });
          } else if (shape.type === "boolean" || shape.type === "choice") {
            input = document.createElement("select");
            input.append(new Option("(not set)", ""));
            for (const option of shape.type === "boolean" ? ["true", "false"] : shape.options) input.append(new Option(option, option));
            input.value = own ? String(own.value) : "";
          } else if (shape.type === "list" && scalar(shape.item)) {
            input = Object.assign(document.createElement("textarea"), { rows: 2, placeholder: "one per line" });
            input.value = shown(shape, own?.value);
          } else {
            input = document.createElement("input");
            if (shape.type === "integer" || shape.type === "number") input.inputMode = "decimal";
            if (!scalar(shape)) input.placeholder = 'a TOML value, e.g. ["a", "b"] or { key = "value" }';
            input.value = shown(shape, own?.value);
          }
          input.id = id;
          input.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
          const hint = Object.assign(document.createElement("span"), { className: "hint", id: `${id}-hint` });
          const notes = [];
          if (key.default !== undefined) notes.push(`default ${toTOML(key.default)}`);
          if (effective && (!own || effective.source !== cfg.doc.path)) notes.push(`in effect: ${effective.secret ? "(secret)" : toTOML(effective.value)} from ${effective.source}`);
          if (own) notes.push("set in this file");
          hint.textContent = notes.join(" · ");
          const error = Object.assign(document.createElement("span"), { className: "field-error", id: `${id}-error` });
          const read = () => {
            const text = input.value;
            if (key.secret) return text === "" ? null : text;
            if (input.tagName === "SELECT") return text === "" ? null : shape.type === "boolean" ? text === "true" : text;
            if (text.trim() === "") return null;
            if (shape.type === "list" && scalar(shape.item)) return text.split("\n").map((line) => line.trim()).filter(Boolean);
            if (!scalar(shape)) return { toml: text };
            return text;
          };
          input.addEventListener("input", () => {
            cfg.changes.set(rendered, { path, value: read() });
            row.classList.add("changed");
            $("config-status").textContent = `${cfg.changes.size} unsaved change${cfg.changes.size === 1 ? "" : "s"}`;
          });
          row.append(label, input, hint, error);
          cfg.rows.set(rendered, row);
          return row;
        }

        // The field an issue belongs to: its path, or the nearest enclosing one (`x.list[2]` → `x.list`).
        function rowFor(path) {
          for (let p = path; p; ) {
            if (cfg.rows.has(p)) return cfg.rows.get(p);
            const cut = p.search(/(\.[^.]*|\[\d+\])$/);
            if (cut <= 0) return null;
            p = p.slice(0, cut);
          }
          return null;
        }

        function showIssues(issues) {
          for (const row of cfg.rows.values()) { row.querySelector(".field-error").textContent = ""; row.querySelector("input, select, textarea").removeAttribute("aria-invalid"); }
          $("config-issues").replaceChildren();
          for (const issue of issues) {
            const row = rowFor(issue.path);
            if (row) {
              row.querySelector(".field-error").textContent = issue.message;
              const control = row.querySelector("input, select, textarea");
              control.setAttribute("aria-invalid", "true");
              let parent = row.parentElement;
              while (parent) { if (parent.tagName === "DETAILS") parent.open = true; parent = parent.parentElement; }
            } else {
              const item = document.createElement("li");
              item.textContent = issue.message;
              $("config-issues").append(item);
            }
          }
          const first = document.querySelector("#config-fields [aria-invalid=true]");
          if (first) first.focus();
        }

        async function openConfig(id) {
          $("config-status").textContent = "";
          const doc = await api(`/api/v1/config/file?id=${encodeURIComponent(id)}`);
          Object.assign(cfg, { doc, changes: new Map(), rows: new Map() });
          $("config-path").textContent = doc.exists ? doc.path : `${doc.path} (created when you save)`;
          const fields = $("config-fields");
          fields.replaceChildren();
          section(fields, doc.schema, []);
          for (const path of doc.unknown) {
            const row = document.createElement("div");
            row.className = "field";
            const remove = Object.assign(document.createElement("button"), { type: "button", textContent: `Remove unknown key ${renderPath(path)}` });
            remove.onclick = () => { cfg.changes.set(renderPath(path), { path, value: null }); row.remove(); };
            row.append(remove);
            fields.prepend(row);
          }
          showIssues(doc.issues);
        }

        async function loadConfigFiles(selected) {
          const files = await api("/api/v1/config");
          $("config-file").replaceChildren(...files.map((f) => new Option(`${f.title} — ${f.path}${f.exists ? "" : " (new)"}`, f.id)));
          const preferred = selected ?? (files.find((f) => f.id === "agent/project/agent.toml") ?? files[0]).id;
          $("config-file").value = preferred;
          await openConfig(preferred);
        }

        $("show-config").onclick = async () => {
          openPanel("config");
          $("show-config").setAttribute("aria-expanded", "true");
          try {
            await loadConfigFiles($("config-file").value || undefined);
            const check = await api(`/api/v1/users/${encodeURIComponent(state.user)}/config`);
            $("config-check").querySelector("summary").textContent = check.valid ? "✓ runner config check: valid" : "✗ runner config check: problems";
            $("config-check-text").textContent = `${check.check}\n${check.effective}`;
          } catch (error) { $("config-status").textContent = error.message; }
        };
        $("close-config").onclick = closePanel;
        $("config-file").onchange = () => openConfig($("config-file").value).catch((error) => { $("config-status").textContent = error.message; });
        $("config-reset").onclick = () => openConfig(cfg.doc.id);
        $("config-form").onsubmit = async (event) => {
          event.preventDefault();
          if (!cfg.changes.size) { $("config-status").textContent = "nothing to save"; return; }
          $("config-status").textContent = "checking…";
          const response = await fetch("/api/v1/config/file", {
            method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ id: cfg.doc.id, revision: cfg.doc.revision, changes: [...cfg.changes.values()] }),
          });
          const body = await response.json().catch(() => ({}));
          if (response.status === 422 && body.error?.fields) {
            showIssues(body.error.fields);
            $("config-status").textContent = `not saved: ${body.error.fields.length} problem${body.error.fields.length === 1 ? "" : "s"} (see the marked fields)`;
            return;
          }
          if (!response.ok) { $("config-status").textContent = `not saved: ${body.error?.message ?? response.statusText}`; return; }
          const data = body.data;
          await openConfig(cfg.doc.id);
          $("config-status").textContent = `saved ${data.changed_fields.join(", ")}${data.backup_path ? ` (previous version: ${data.backup_path})` : ""}${data.restart_required ? " — restart the guest to apply" : ""}`;
        };
        $("add-user").onsubmit = async (event) => {
          event.preventDefault();
          const id = $("new-user").value.trim();
          try {
            await api("/api/v1/config/users", { method: "POST", body: JSON.stringify({ user_id: id }) });
            $("new-user").value = "";
            $("user").append(new Option(id, id));
            await loadConfigFiles(`user/${id}`);
            $("config-status").textContent = `added ${id}; start their guest from the user menu`;
          } catch (error) { $("config-status").textContent = error.message; }
        };

        // First run: no usable provider → say how, try it, save it.
        const setupModels = { openai: "gpt-4o-mini", anthropic: "claude-haiku-4-5", gemini: "gemini-2.5-flash", openai_compatible: "" };
        function setupChoice() {
          const kind = $("setup-kind").value;
          return { kind, model: $("setup-model").value.trim(), api_key: $("setup-key").value, base_url: kind === "openai_compatible" ? $("setup-url").value.trim() : undefined };
        }
        $("setup-kind").onchange = () => {
          $("setup-url-row").hidden = $("setup-kind").value !== "openai_compatible";
          $("setup-model").value = setupModels[$("setup-kind").value];
        };
        $("setup-test").onclick = async () => {
          $("setup-status").textContent = "sending one request…";
          try {
            const result = await api("/api/v1/onboarding/test", { method: "POST", body: JSON.stringify(setupChoice()) });
            $("setup-status").textContent = result.ok ? `✓ ${result.message}` : `✗ ${result.message}`;
          } catch (error) { $("setup-status").textContent = `✗ ${error.message}`; }
        };
        $("setup-form").onsubmit = async (event) => {
          event.preventDefault();
          try {
            const result = await api("/api/v1/onboarding/save", { method: "POST", body: JSON.stringify(setupChoice()) });
            $("setup-key").value = "";
            $("setup-status").textContent = `saved to ${result.written.join(" and ")}; restart the guest to use ${result.provider}/${result.model}`;
          } catch (error) { $("setup-status").textContent = `✗ ${error.message}`; }
        };
        async function checkSetup() {
          try {
            const status = await api("/api/v1/onboarding");
            $("setup").hidden = !status.needs_setup;
            if (status.needs_setup) {
              $("setup-message").textContent = status.message;
              if (!$("setup-model").value) $("setup-model").value = setupModels[$("setup-kind").value];
            }
          } catch (error) { $("setup").hidden = true; }
        }

        $("rename-session").onclick = () => {
          const name = prompt("New title for this session");
          if (name !== null) send("rename_session", { session_id: state.session, display_name: name });
        };
        $("archive-session").onclick = () => {
          if (confirm("Archive this session? It leaves the list; its history is kept.")) send("archive_session", { session_id: state.session, archived: true });
        };
        $("file").onchange = async () => {
          for (const file of $("file").files) {
            const bytes = new Uint8Array(await file.arrayBuffer());
            let binary = "";
            for (let i = 0; i < bytes.length; i += 32768) binary += String.fromCharCode(...bytes.subarray(i, i + 32768));
            const data = btoa(binary);
            state.files.push({ name: file.name, mime_type: file.type || "application/octet-stream", data });
            add("note", `${file.name} will be sent with your next message`);
          }
        };
        start();
        """#
}
