"""WeCom (企业微信) as a live source: the API client, callback events, full sync, tags both
ways and channel QR codes. Writes go through crm.services; this package speaks WeCom."""
