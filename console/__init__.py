"""What composes the apps for people: the customer 360° view (the API lookup and the admin
customer page). It imports crm, segments and campaigns; none of them imports it."""
