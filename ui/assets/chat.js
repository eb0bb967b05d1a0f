() => {
  // A click on [n] in an answer shows that answer's sources and brings source n
  // into view. The chat's sanitiser keeps only href, so the target is read from it.
  const flash = (el) => {
    el.classList.remove("nd-flash");
    void el.offsetWidth;
    el.classList.add("nd-flash");
  };
  document.addEventListener(
    "click",
    (event) => {
      const link = event.target.closest && event.target.closest("a.nd-cite");
      if (!link) return;
      const match = /^#nd-src-(\d+)-(\d+)$/.exec(link.getAttribute("href") || "");
      if (!match) return;
      event.preventDefault();
      event.stopPropagation();
      document.querySelectorAll("section.nd-turn").forEach((section) => {
        section.hidden = section.id !== "nd-turn-" + match[1];
      });
      const card = document.getElementById("nd-src-" + match[1] + "-" + match[2]);
      if (!card) return;
      card.scrollIntoView({ block: "nearest" });
      flash(card);
    },
    true,
  );
}
