// Keeps the console's pages live: the server says over server-sent events
// when the system has changed, and each region marked `data-live` is fetched
// again and swapped in place (forms outside those regions keep what is typed).
(() => {
  const regions = document.querySelectorAll("[data-live]");
  if (regions.length === 0 || !window.EventSource) return;
  const isBeingFilled = (region) =>
    region.contains(document.activeElement) ||
    [...region.querySelectorAll("input, textarea")].some((field) => field.value !== "");
  let busy = false;
  let again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (response.ok) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        for (const region of regions) {
          const fresh = page.querySelector(`[data-live="${region.dataset.live}"]`);
          // Not under the operator's hand: rows that move while they point at
          // one, or a reason they are typing, would make them act on another.
          if (!fresh || region.matches(":hover") || isBeingFilled(region)) continue;
          if (fresh.innerHTML !== region.innerHTML) region.innerHTML = fresh.innerHTML;
        }
      }
    } finally {
      // At most one refresh a second, and one more if changes came meanwhile.
      setTimeout(() => { busy = false; if (again) { again = false; refresh(); } }, 1000);
    }
  };
  const live = new EventSource("/console/live");
  live.addEventListener("changed", refresh);
  // A browser allows few connections to one site; a page left behind (kept
  // for the back button, say) must not hold one.
  window.addEventListener("pagehide", () => live.close());
})();
