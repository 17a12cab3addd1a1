// The Slack-like page of approvals-bot's demo. It plays Slack's client: it renders what the bot
// posted (Block Kit, mrkdwn) and sends what a person does to the sandbox, which signs it and POSTs it
// to the bot exactly as Slack would. Text is put into the page with textContent only, never as HTML.
"use strict";

const EMOJI = {
  white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", hourglass: "⌛", hourglass_flowing_sand: "⏳",
  warning: "⚠️", alarm_clock: "⏰", no_entry_sign: "🚫", large_yellow_circle: "🟡", large_orange_circle: "🟠",
  large_green_circle: "🟢", white_circle: "⚪", red_circle: "🔴", lock: "🔒", link: "🔗", bell: "🔔",
  wave: "👋", inbox_tray: "📥", rotating_light: "🚨", tada: "🎉", bust_in_silhouette: "👤", memo: "📝",
  speech_balloon: "💬", information_source: "ℹ️", arrows_counterclockwise: "🔄", rocket: "🚀", clipboard: "📋", busts_in_silhouette: "👥",
};

const page = {
  state: null,
  me: null,
  current: null, // a conversation id, or "home"
  thread: null, // ts of the open thread's root
  modalKey: "",
  homeKey: "",
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---- mrkdwn -----------------------------------------------------------------------------------------

function unescapeSlack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function emojify(text) {
  return text.replace(/:([a-z][a-z0-9_+-]*):/g, (whole, code) => EMOJI[code] || whole);
}

function inline(raw) {
  // *bold*, _italic_, ~strike~, `code`, at word boundaries as Slack reads them; emoji codes first,
  // so the underscores of :large_orange_circle: are not read as italics.
  const text = emojify(raw);
  const out = [];
  const pattern = /(`[^`\n]+`|(?<![\w*])\*[^*\n]+\*(?![\w*])|(?<![\w_])_[^_\n]+_(?![\w_])|(?<![\w~])~[^~\n]+~(?![\w~]))/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) out.push(...lines(text.slice(last, match.index)));
    const token = match[0];
    const inner = token.slice(1, -1);
    const tag = { "`": "code", "*": "strong", _: "em", "~": "s" }[token[0]];
    out.push(el(tag, {}, tag === "code" ? inner : lines(inner)));
    last = match.index + token.length;
  }
  if (last < text.length) out.push(...lines(text.slice(last)));
  return out;
}

// Links and mentions are read first and stand in the text as placeholders, so emphasis around
// them (*<url|title>*) works as in Slack; lines() puts the nodes back.
let placed = [];

function lines(text) {
  const out = [];
  text.split("\n").forEach((line, i) => {
    if (i) out.push(el("br"));
    line.split(/\uE000(\d+)\uE001/).forEach((part, j) => {
      if (j % 2) out.push(placed[Number(part)]);
      else if (part) out.push(part);
    });
  });
  return out;
}

function mrkdwn(text, plain) {
  if (plain) return lines(emojify((text || "").replace(/[\uE000\uE001]/g, "")));
  placed = [];
  const source = (text || "").replace(/[\uE000\uE001]/g, "");
  const marked = source.replace(/<([^<>|]+)(?:\|([^<>]*))?>/g, (whole, target, label) => {
    placed.push(angle(target, label === undefined ? null : unescapeSlack(label)));
    return `\uE000${placed.length - 1}\uE001`;
  });
  return inline(unescapeSlack(marked));
}

function angle(target, label) {
  const names = page.state.names;
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return el("span", { class: "mention" }, "@" + (names[id] || label || id));
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    return el("span", { class: "mention" }, "#" + (label || page.state.channel_names[id] || id));
  }
  if (target.startsWith("!date^")) return label || target;
  if (target.startsWith("!subteam^")) return label || "@group";
  if (target.startsWith("!")) return el("span", { class: "mention" }, "@" + target.slice(1).split("^")[0]);
  const url = unescapeSlack(target);
  if (/^(https?:|mailto:)/i.test(url)) {
    return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label || url);
  }
  return label || url;
}

function textOf(obj) {
  if (!obj) return [];
  return mrkdwn(obj.text || "", obj.type === "plain_text");
}

// ---- Block Kit ----------------------------------------------------------------------------------------

function renderBlocks(blocks, ctx) {
  return (blocks || []).map((block) => el("div", { class: "block", dataset: { blockId: block.block_id || "" } }, renderBlock(block, ctx)));
}

function renderBlock(block, ctx) {
  switch (block.type) {
    case "header":
      return el("h3", {}, textOf(block.text));
    case "divider":
      return el("hr", { class: "divider" });
    case "context":
      return el("div", { class: "context" }, (block.elements || []).map((e) =>
        e.type === "image" ? el("span", {}, `[${e.alt_text || "image"}] `) : el("span", {}, textOf(e), " ")));
    case "section": {
      const main = el("div", {}, block.text ? el("div", {}, textOf(block.text)) : null,
        block.fields ? el("div", { class: "fields" }, block.fields.map((f) => el("div", {}, textOf(f)))) : null);
      const accessory = block.accessory ? element(block.accessory, block, ctx) : null;
      return el("div", { class: "section-row" }, main, accessory);
    }
    case "actions":
      return el("div", { class: "actions" }, (block.elements || []).map((e) => element(e, block, ctx)));
    case "input":
      return inputBlock(block, ctx);
    case "image":
      return el("div", { class: "context" }, `[image: ${block.alt_text || ""}]`);
    default:
      return el("div", { class: "context" }, `(${block.type} block)`);
  }
}

function element(e, block, ctx) {
  const send = (selected) => act(ctx, block.block_id, e.action_id, selected);
  switch (e.type) {
    case "button":
      return el("button", {
        class: "btn" + (e.style ? " " + e.style : ""),
        type: "button",
        onclick: () => {
          if (e.url) window.open(e.url, "_blank", "noopener");
          confirmThen(e.confirm, () => send(undefined));
        },
      }, textOf(e.text));
    case "overflow": {
      const items = el("div", { class: "menu-items", hidden: true });
      for (const option of e.options || []) {
        items.append(el("button", {
          type: "button",
          onclick: () => {
            items.hidden = true;
            if (option.url) window.open(option.url, "_blank", "noopener");
            confirmThen(e.confirm, () => send(option.value));
          },
        }, textOf(option.text)));
      }
      return el("span", { class: "overflow-menu" },
        el("button", { class: "btn", type: "button", "aria-label": "More actions", onclick: () => { items.hidden = !items.hidden; } }, "⋯"),
        items);
    }
    case "static_select":
    case "users_select":
    case "conversations_select":
    case "channels_select": {
      const select = selectFor(e);
      select.addEventListener("change", () => confirmThen(e.confirm, () => send(select.value)));
      return select;
    }
    case "image":
      return el("span", { class: "context" }, `[${e.alt_text || "image"}]`);
    default:
      return el("span", { class: "context" }, `(${e.type})`);
  }
}

function selectFor(e, multiple) {
  const select = el("select", { multiple: multiple || undefined, dataset: { actionId: e.action_id || "" } });
  if (!multiple) select.append(el("option", { value: "" }, e.placeholder ? e.placeholder.text : "Choose…"));
  const options = [];
  if (e.type.includes("users")) {
    for (const p of page.state.people) options.push([p.id, `${p.handle} (${p.name})`]);
  } else if (e.type.includes("conversations") || e.type.includes("channels")) {
    for (const [id, name] of Object.entries(page.state.channel_names)) options.push([id, "#" + name]);
  } else {
    for (const o of e.options || []) options.push([o.value, (o.text || {}).text || o.value]);
    for (const g of e.option_groups || []) for (const o of g.options || []) options.push([o.value, (o.text || {}).text || o.value]);
  }
  const initial = new Set([].concat(
    e.initial_option ? [e.initial_option.value] : [], (e.initial_options || []).map((o) => o.value),
    e.initial_user || [], e.initial_users || [], e.initial_conversation || [], e.initial_channel || [],
    e.initial_conversations || [], e.initial_channels || []));
  for (const [value, label] of options) select.append(el("option", { value, selected: initial.has(value) }, label));
  return select;
}

function inputBlock(block, ctx) {
  const e = block.element || {};
  let control;
  if (e.type === "plain_text_input") {
    const attrs = { name: block.block_id, placeholder: e.placeholder ? e.placeholder.text : "", maxlength: e.max_length };
    control = e.multiline ? el("textarea", { ...attrs, rows: 3 }, e.initial_value || "") : el("input", { ...attrs, value: e.initial_value || "" });
  } else if (["static_select", "users_select", "conversations_select", "channels_select", "external_select"].includes(e.type)) {
    control = selectFor(e);
  } else if (e.type.startsWith("multi_")) {
    control = selectFor(e, true);
  } else if (e.type === "checkboxes" || e.type === "radio_buttons") {
    const kind = e.type === "checkboxes" ? "checkbox" : "radio";
    const chosen = new Set([].concat(e.initial_option ? [e.initial_option.value] : [], (e.initial_options || []).map((o) => o.value)));
    control = el("div", {}, (e.options || []).map((o) => el("label", {},
      el("input", { type: kind, name: block.block_id, value: o.value, checked: chosen.has(o.value) }), " ", textOf(o.text))));
  } else if (e.type === "datepicker") {
    control = el("input", { type: "date", value: e.initial_date || "" });
  } else {
    control = el("input", { value: "" });
  }
  control.dataset.blockId = block.block_id;
  control.dataset.type = e.type;
  const error = (ctx.errors || {})[block.block_id];
  const id = "in-" + block.block_id;
  control.id = id;
  return el("div", { class: "input" },
    el("label", { for: id }, textOf(block.label), block.optional ? el("span", { class: "hint" }, " (optional)") : null),
    control,
    block.hint ? el("div", { class: "hint" }, textOf(block.hint)) : null,
    error ? el("div", { class: "error" }, error) : null);
}

function formValues(root) {
  const values = {};
  for (const control of root.querySelectorAll("[data-block-id][data-type]")) {
    const id = control.dataset.blockId;
    const type = control.dataset.type;
    let value;
    if (type === "checkboxes") value = [...control.querySelectorAll("input:checked")].map((i) => i.value);
    else if (type === "radio_buttons") value = (control.querySelector("input:checked") || {}).value || null;
    else if (control.multiple) value = [...control.selectedOptions].map((o) => o.value);
    else value = control.value === "" ? null : control.value;
    values[id] = value;
  }
  return values;
}

// ---- talking to the sandbox -----------------------------------------------------------------------------

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: page.me, ...body }),
  });
  let answer = {};
  try { answer = await response.json(); } catch (err) { answer = { problem: `HTTP ${response.status}` }; }
  if (answer.problem) toast(answer.problem);
  await refresh();
  return answer;
}

function act(ctx, blockId, actionId, selected) {
  const body = { where: ctx.where, channel: ctx.channel, ts: ctx.ts, view_id: ctx.view_id, block_id: blockId, action_id: actionId, selected };
  if (ctx.where === "view" && ctx.form) body.values = formValues(ctx.form);
  return post("/app/action", body);
}

function confirmThen(confirm, then) {
  if (!confirm) { then(); return; }
  const overlay = document.getElementById("overlay");
  const dialog = el("div", { class: "modal", role: "dialog", "aria-label": (confirm.title || {}).text || "Are you sure?" },
    el("header", {}, textOf(confirm.title || { type: "plain_text", text: "Are you sure?" })),
    el("div", { class: "content" }, textOf(confirm.text)),
    el("footer", {},
      el("button", { class: "btn", type: "button", onclick: () => { closeConfirm(); } }, textOf(confirm.deny || { type: "plain_text", text: "Cancel" })),
      el("button", { class: "btn " + (confirm.style || "primary"), type: "button", onclick: () => { closeConfirm(); then(); } },
        textOf(confirm.confirm || { type: "plain_text", text: "Yes" }))));
  page.confirming = true;
  overlay.replaceChildren(dialog);
  overlay.hidden = false;
}

function closeConfirm() {
  page.confirming = false;
  page.modalKey = "";
  document.getElementById("overlay").hidden = true;
  renderModal();
}

function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(page.toastTimer);
  page.toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function refresh() {
  const response = await fetch(`/app/state?user=${encodeURIComponent(page.me)}`);
  if (!response.ok) return;
  page.state = await response.json();
  render();
}

// ---- the page ----------------------------------------------------------------------------------------

function who(id) {
  return page.state.names[id] || id;
}

function renderMessage(m, ctx, inThread) {
  const mctx = { ...ctx, where: m.ephemeral ? "ephemeral" : "message", ts: m.ts };
  const body = el("div", { class: "body" },
    el("div", { class: "meta" }, el("strong", {}, who(m.user)),
      m.user === page.state.bot.id ? el("span", { class: "private" }, "APP ") : null,
      m.ephemeral ? el("span", { class: "private" }, "Only visible to you") : null,
      !inThread && m.broadcast ? el("button", { class: "replies", type: "button", onclick: () => openThread(m.thread_ts) }, "replied to a thread") : null),
    m.blocks && m.blocks.length ? renderBlocks(m.blocks, mctx) : el("div", {}, mrkdwn(m.text)),
    m.edited ? el("span", { class: "edited" }, "(edited)") : null,
    !inThread && m.replies ? el("button", { class: "replies", type: "button", onclick: () => openThread(m.ts) },
      `${m.replies} repl${m.replies === 1 ? "y" : "ies"}`) : null);
  return el("div", { class: "msg" + (m.ephemeral ? " ephemeral" : ""), dataset: { ts: m.ts, channel: ctx.channel } },
    el("div", { class: "avatar" }, who(m.user).slice(0, 1).toUpperCase()), body);
}

function render() {
  const s = page.state;
  const who = document.getElementById("who");
  if (!who.options.length) {
    for (const p of s.people) who.append(el("option", { value: p.id }, `${p.handle}${p.role ? " — " + p.role : ""}`));
  }
  who.value = page.me;
  if (!page.current || (page.current !== "home" && !s.conversations.some((c) => c.id === page.current))) {
    page.current = (s.conversations.find((c) => c.name === "deploys") || s.conversations[0]).id;
  }
  renderSidebar();
  renderMain();
  renderThread();
  renderModal();
  renderVendors();
  document.getElementById("banners").replaceChildren(...s.banners.slice(-3).map((b) =>
    el("div", { class: "banner" }, `Slack refused the app's ${b.method}: ${b.error}`, b.detail.length ? ` — ${b.detail.join("; ")}` : "")));
  const intro = document.getElementById("intro");
  if (!intro.dataset.filled && s.intro.length) {
    intro.replaceChildren(...s.intro.map((line) => el("p", {}, mrkdwn(line))),
      el("button", { class: "btn", type: "button", onclick: () => { intro.hidden = true; } }, "Got it"));
    intro.dataset.filled = "1";
  }
}

function renderSidebar() {
  const s = page.state;
  const link = (c) => el("a", {
    href: "#", class: "conv" + (c.id === page.current ? " active" : "") + (c.unread && c.id !== page.current ? " unread" : ""),
    dataset: { conv: c.id }, onclick: (ev) => { ev.preventDefault(); openConversation(c.id); },
  }, el("span", {}, (c.kind === "dm" ? "● " : "# ") + c.name), c.unread && c.id !== page.current ? el("span", { class: "badge" }, String(c.unread)) : null);
  document.getElementById("channels").replaceChildren(...s.conversations.filter((c) => c.kind === "channel").map(link));
  document.getElementById("dms").replaceChildren(...s.conversations.filter((c) => c.kind === "dm").map(link));
  document.getElementById("home-link").classList.toggle("active", page.current === "home");
}

function renderMain() {
  const s = page.state;
  const box = document.getElementById("messages");
  const title = document.getElementById("title");
  const composer = document.getElementById("composer");
  if (page.current === "home") {
    title.textContent = "approvals-bot · Home";
    composer.hidden = true;
    const key = JSON.stringify(s.home);
    if (key === page.homeKey) return;
    page.homeKey = key;
    if (!s.home) { box.replaceChildren(el("p", { class: "context", style: "padding: 0 18px" }, "Opening Home…")); return; }
    const form = el("div", { class: "home", style: "padding: 0 18px" });
    form.append(...renderBlocks(s.home.view.blocks, { where: "view", view_id: s.home.id, form }));
    box.replaceChildren(form);
    box.scrollTop = 0;
    return;
  }
  page.homeKey = "";
  composer.hidden = false;
  const conv = s.conversations.find((c) => c.id === page.current);
  title.textContent = (conv.kind === "dm" ? "" : "#") + conv.name;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  // Thread replies stay in their thread, unless sent "also to the channel" (reply_broadcast).
  const roots = (s.messages[page.current] || []).filter((m) => !m.thread_ts || m.broadcast);
  box.replaceChildren(...roots.map((m) => renderMessage(m, { channel: page.current }, false)));
  if (atBottom || !box.dataset.seen) box.scrollTop = box.scrollHeight;
  box.dataset.seen = "1";
  if (conv.unread) post("/app/read", { channel: page.current }).catch(() => {});
}

function renderThread() {
  const pane = document.getElementById("thread");
  if (!page.thread || page.current === "home") { pane.hidden = true; return; }
  const all = page.state.messages[page.current] || [];
  const root = all.find((m) => m.ts === page.thread);
  if (!root) { pane.hidden = true; return; }
  const replies = all.filter((m) => m.thread_ts === page.thread);
  document.getElementById("thread-messages").replaceChildren(
    renderMessage(root, { channel: page.current }, true), el("hr", { class: "divider" }),
    ...replies.map((m) => renderMessage(m, { channel: page.current }, true)));
  pane.hidden = false;
}

function renderModal() {
  if (page.confirming) return;
  const overlay = document.getElementById("overlay");
  const top = page.state.modals[page.state.modals.length - 1];
  const key = top ? JSON.stringify(top) : "";
  if (key === page.modalKey) return;
  page.modalKey = key;
  if (!top) { overlay.hidden = true; overlay.replaceChildren(); return; }
  const view = top.view;
  const content = el("div", { class: "content" });
  const ctx = { where: "view", view_id: top.id, errors: top.errors, form: content };
  content.append(...renderBlocks(view.blocks, ctx));
  const problem = el("div", { class: "error input" });
  const dialog = el("form", {
    class: "modal", role: "dialog", "aria-label": (view.title || {}).text || "Modal",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const answer = await post("/app/submit", { view_id: top.id, values: formValues(content) });
      if (answer.problem) problem.textContent = answer.problem;
    },
  },
  el("header", {}, textOf(view.title)),
  content,
  problem,
  el("footer", {},
    el("button", { class: "btn", type: "button", onclick: () => post("/app/close", { view_id: top.id }) }, textOf(view.close || { type: "plain_text", text: "Cancel" })),
    view.submit ? el("button", { class: "btn primary", type: "submit" }, textOf(view.submit)) : null));
  overlay.replaceChildren(dialog);
  overlay.hidden = false;
}

function renderVendors() {
  const pane = document.getElementById("vendors");
  if (pane.hidden) return;
  const vendor = (v) => el("div", { class: "vendor", dataset: { vendor: v.vendor } },
    el("h4", {}, v.label),
    v.items.length ? el("ul", {}, v.items.map((item) => el("li", { dataset: { item: item.id } },
      el("div", {}, item.title),
      el("div", { class: "row" }, (item.decisions || []).map((d) => el("button", {
        class: "btn" + (d === "approve" ? " primary" : " danger"), type: "button",
        onclick: () => vendorAct(v.vendor, "decide", item.id, d),
      }, `${d[0].toUpperCase()}${d.slice(1)} in ${v.label}`)))))) : el("p", { class: "context" }, "Nothing pending."),
    el("div", { class: "row" },
      v.faults.map((f) => el("button", { class: "btn", type: "button", onclick: () => vendorAct(v.vendor, "fail", null, f) }, `Next call: ${f}`)),
      v.can_add ? el("button", { class: "btn", type: "button", onclick: () => vendorAct(v.vendor, "add", null, null) }, "Add an approval") : null),
    v.note ? el("p", { class: "context" }, v.note) : null);
  pane.replaceChildren(
    el("header", {}, el("strong", {}, "Vendor sandboxes"), el("button", { class: "ghost", type: "button", onclick: toggleVendors }, "✕")),
    el("p", { class: "context", style: "padding: 0 14px" }, "Changes made here happen in the vendor, outside Slack: watch the cards follow."),
    ...page.state.vendors.map(vendor));
}

async function vendorAct(vendor, action, item, option) {
  const response = await fetch("/app/vendor", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ vendor, action, item, option }),
  });
  const answer = await response.json();
  toast(answer.said || answer.problem || "done");
  await refresh();
}

function toggleVendors() {
  const pane = document.getElementById("vendors");
  pane.hidden = !pane.hidden;
  renderVendors();
}

function openConversation(id) {
  page.current = id;
  page.thread = null;
  document.getElementById("sidebar").classList.remove("open");
  if (id === "home") post("/app/home", {});
  else render();
}

function openThread(ts) {
  page.thread = ts;
  renderThread();
}

function switchTo(user) {
  page.me = user;
  page.modalKey = "";
  page.homeKey = "";
  page.current = null;
  page.thread = null;
  const url = new URL(window.location.href);
  url.searchParams.set("as", page.state.names[user] || user);
  history.replaceState(null, "", url);
  refresh();
}

async function start() {
  const response = await fetch("/app/state");
  page.state = await response.json();
  const wanted = new URL(window.location.href).searchParams.get("as");
  const person = page.state.people.find((p) => p.handle === wanted || p.id === wanted) || page.state.people[0];
  page.me = person.id;
  await refresh();
  document.getElementById("who").addEventListener("change", (ev) => switchTo(ev.target.value));
  document.getElementById("home-link").addEventListener("click", (ev) => { ev.preventDefault(); openConversation("home"); });
  document.getElementById("thread-close").addEventListener("click", () => { page.thread = null; renderThread(); });
  document.getElementById("vendors-toggle").addEventListener("click", toggleVendors);
  document.getElementById("menu").addEventListener("click", () => document.getElementById("sidebar").classList.toggle("open"));
  document.getElementById("composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = document.getElementById("compose");
    const text = input.value.trim();
    if (!text) return;
    if (!text.startsWith("/")) {
      toast("The bot's Messages tab is read-only: type /approvals … to talk to it.");
      return;
    }
    input.value = "";
    await post("/app/command", { text, channel: page.current });
  });
  const events = new EventSource("/app/events");
  events.addEventListener("change", () => refresh());
  document.body.dataset.ready = "1";
}

start();
