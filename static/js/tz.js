// Tell the server the browser's time zone (a cookie read by examsite.timezones.zone_for), so that every page shows
// times in the reader's own zone. A person's own setting (User.time_zone) wins over it.
(function () {
  let zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (err) {
    return;
  }
  if (!zone || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) return;
  const current = document.cookie.split("; ").find((c) => c.startsWith("tz="));
  if (current === `tz=${zone}`) return;
  document.cookie = `tz=${zone}; path=/; max-age=31536000; SameSite=Lax`;
})();
