// evlaunch dashboard: live progress of a run job, and the compare page's charts. No build step.
"use strict";

(function jobProgress() {
  const box = document.getElementById("job");
  if (!box) return;
  const id = box.dataset.jobId;
  const status = document.getElementById("job-status");
  const phase = document.getElementById("job-phase");
  const bar = document.getElementById("job-progress");
  const count = document.getElementById("job-count");
  const elapsed = document.getElementById("job-elapsed");
  const error = document.getElementById("job-error");
  const links = document.getElementById("job-links");
  const cancelForm = document.getElementById("cancel-form");
  const cancelButton = document.getElementById("cancel-button");
  const fmt = new Intl.NumberFormat("en-US");
  let timer = null;

  function show(job) {
    status.textContent = job.status;
    status.className = "badge status-" + job.status;
    phase.textContent = job.phase;
    bar.max = job.total;
    bar.value = job.done;
    bar.textContent = Math.round(job.fraction * 100) + "%";
    count.textContent = fmt.format(job.done) + " of " + fmt.format(job.total) + " draws";
    elapsed.textContent = job.elapsed_s.toFixed(1);
    if (job.error) {
      error.textContent = job.error;
      error.hidden = false;
    }
    if (job.run_id && !links.querySelector("a")) {
      links.textContent = "Run ";
      const a = document.createElement("a");
      a.href = "/runs/" + encodeURIComponent(job.run_id);
      a.textContent = job.run_id;
      links.appendChild(a);
    }
    const active = job.status === "queued" || job.status === "running";
    cancelButton.disabled = !active || job.cancel_requested;
    if (job.status === "finished" && job.results_url) {
      window.location.assign(job.results_url);
      return false;
    }
    return active;
  }

  async function poll() {
    try {
      const response = await fetch("/api/jobs/" + encodeURIComponent(id), {cache: "no-store"});
      if (!response.ok) throw new Error("HTTP " + response.status);
      if (!show(await response.json())) return;
    } catch (problem) {
      phase.textContent = "lost contact with the dashboard (" + problem.message + "); retrying";
    }
    timer = window.setTimeout(poll, 500);
  }

  cancelForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    cancelButton.disabled = true;
    try {
      const response = await fetch("/api/jobs/" + encodeURIComponent(id) + "/cancel", {method: "POST"});
      if (response.ok) show(await response.json());
    } catch (problem) {
      cancelForm.submit();
    }
  });

  poll();
})();

(function compareCharts() {
  const data = document.getElementById("compare-data");
  if (!data || !window.Plotly) return;
  const chart = JSON.parse(data.textContent);
  const layout = (title, yTitle) => ({
    title: {text: title}, barmode: "group", template: "plotly_white", height: 360,
    margin: {l: 70, r: 20, t: 50, b: 50}, yaxis: {title: {text: yTitle}}, legend: {orientation: "h"},
  });
  const bars = (key, scale) => ["a", "b"].map((side) => ({
    type: "bar", name: side.toUpperCase() + ": " + chart[side].id, x: chart.paths,
    y: chart.paths.map((p) => (chart[side][key][p] == null ? null : chart[side][key][p] / scale)),
  }));
  const config = {displaylogo: false, responsive: true};
  Plotly.newPlot("chart-deliveries", bars("deliveries_last", 1),
    layout("Deliveries in " + chart.last_year + " (mean)", "vehicles"), config);
  Plotly.newPlot("chart-npv", bars("npv_mean", 1e9), layout("NPV (mean)", "bn CNY"), config);
})();
