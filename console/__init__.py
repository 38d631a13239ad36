"""What composes the apps for people: the customer 360° view (the API lookup and the admin
customer page) and the overview (运营看板) on the admin's first page. It imports crm,
segments and campaigns; none of them imports it."""
