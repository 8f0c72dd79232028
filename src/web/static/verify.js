// The verification page: sends the file to POST /api/v1/verify (app.js, data-manual) and shows the answer, one
// card per signature; an enveloping .p7s's content is offered for download and, when it is text, previewed.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("verify-form");
  if (!form) return;
  const texts = document.getElementById("verify-texts").dataset;
  const result = document.getElementById("verify-result");
  const list = document.getElementById("verify-signatures");
  const template = document.getElementById("verify-signature-template");
  const lang = document.documentElement.lang || "en";
  let objectUrl = null;

  const yesNo = (v) => (v ? texts.yes : texts.no);
  // Times in Bucharest, whatever the visitor's computer says, with the zone named (as on the other pages).
  const when = (t) =>
    new Date(t * 1000).toLocaleString(lang === "ro" ? "ro-RO" : "en-GB", {
      timeZone: "Europe/Bucharest",
      dateStyle: "long",
      timeStyle: "short",
    }) + (lang === "ro" ? " (ora României)" : " (Romanian time)");

  function verdict(sig) {
    if (!sig.intact) return [texts.brokenVerdict, "bad"];
    if (sig.modified_after_signing) return [texts.modifiedVerdict, "bad"];
    if (sig.revoked) return [texts.revokedVerdict, "bad"];
    if (!sig.trusted) return [texts.untrustedVerdict, "warn"];
    return [texts.validVerdict, "good"];
  }

  // dataset turns data-q-reason-no-qscd into qReasonNoQscd.
  const camel = (code) => code.split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");

  function qualification(q) {
    if (!q) return texts.none;
    const parts = [texts["q" + camel(q.signature)] || q.signature];
    if (q.timestamp) parts.push(texts["qTs" + camel(q.timestamp)] || q.timestamp);
    let line = parts.join(" · ");
    if (q.reasons.length) {
      line += ` — ${texts.qWhy}: ` + q.reasons.map((r) => texts["qReason" + camel(r)] || r).join("; ");
    }
    return line;
  }

  function card(sig, pdf) {
    const li = template.content.firstElementChild.cloneNode(true);
    const slot = (name) => li.querySelector(`[data-slot="${name}"]`);
    const signer = sig.signer || {};
    slot("kind").textContent = texts[sig.kind === "document_timestamp" ? "kindDocument_timestamp" : "kindSignature"] +
      (sig.field ? ` (${sig.field})` : "");
    const [v, cls] = verdict(sig);
    slot("verdict").textContent = v;
    slot("verdict").classList.add("verdict-" + cls);
    slot("signer").textContent = signer.common_name || signer.subject || texts.none;
    slot("serial").textContent = signer.serial || texts.none;
    slot("issuer").textContent = signer.issuer || texts.none;
    if (sig.signing_time != null) {
      const source = sig.signing_time_source === "timestamp" ? texts.fromTimestamp : texts.fromSigningTime;
      slot("time").textContent = `${when(sig.signing_time)} (${source})`;
    } else {
      slot("time").textContent = texts.none;
    }
    slot("intact").textContent = yesNo(sig.intact);
    slot("trusted").textContent = yesNo(sig.trusted);
    let status = texts["status" + sig.status.charAt(0).toUpperCase() + sig.status.slice(1)] || sig.status;
    if (sig.revoked_at) status += ` (${texts.revokedAt} ${when(sig.revoked_at)})`;
    slot("status").textContent = status;
    if (sig.timestamp) {
      const ts = sig.timestamp;
      slot("timestamp").textContent = `${ts.intact ? texts.tsOk : texts.tsBad} · ${when(ts.time)}` +
        (ts.authority && ts.authority.common_name ? ` · ${ts.authority.common_name}` : "");
    } else {
      slot("timestamp").textContent = texts.none;
    }
    for (const ats of sig.archive_timestamps || []) {
      slot("timestamp").textContent += ` · ${texts.archive}: ${ats.intact ? texts.tsOk : texts.tsBad} · ${when(ats.time)}`;
    }
    if (pdf) {
      slot("coverage").textContent = sig.whole_file ? texts.whole :
        sig.revision ? `${texts.revision} ${sig.revision} / ${sig.revisions}` : texts.none;
      // dataset turns data-changes-form_filling into changesForm_filling.
      const changes = sig.changes_after_signing;
      slot("later").textContent = changes ? texts["changes" + changes.charAt(0).toUpperCase() + changes.slice(1)] :
        sig.later_changes == null ? texts.none : yesNo(sig.later_changes);
    } else {
      li.querySelectorAll("[data-pdf]").forEach((el) => el.remove());
    }
    slot("algorithm").textContent = sig.algorithm || texts.none;
    slot("qualification").textContent = qualification(sig.qualification);
    for (const p of sig.problems || []) {
      const item = document.createElement("li");
      item.textContent = p;
      slot("problems").appendChild(item);
    }
    return li;
  }

  function showContent(content) {
    const box = document.getElementById("verify-content-box");
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
    if (!content) {
      box.classList.add("hidden");
      return;
    }
    box.classList.remove("hidden");
    document.getElementById("verify-content-size").textContent = `${content.length} ${texts.bytes}`;
    document.getElementById("verify-content-sha256").textContent = content.sha256;
    const raw = atob(content.base64);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    objectUrl = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
    const link = document.getElementById("verify-content-download");
    link.href = objectUrl;
    const chosen = document.getElementById("verify-file").files[0];
    const name = chosen ? chosen.name.replace(/\.(p7s|p7m)$/i, "") : "content";
    link.download = name || "content";
    const previewBox = document.getElementById("verify-preview-box");
    if (content.text != null) {
      previewBox.classList.remove("hidden");
      document.getElementById("verify-preview").textContent = content.text;
      document.getElementById("verify-preview-truncated").classList.toggle("hidden", !content.text_truncated);
    } else {
      previewBox.classList.add("hidden");
    }
  }

  form.addEventListener("parafa:done", (ev) => {
    const answer = ev.detail || {};
    const sigs = answer.signatures || [];
    list.replaceChildren(...sigs.map((s) => card(s, answer.kind === "pdf")));
    document.getElementById("verify-summary").textContent = `${texts.count} ${sigs.length}`;
    showContent(answer.content);
    result.classList.remove("hidden");
    result.scrollIntoView({ behavior: "smooth", block: "start" });
  });
  form.addEventListener("parafa:error", () => {
    result.classList.add("hidden");
  });
});
