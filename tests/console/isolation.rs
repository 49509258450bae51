//! Caseload isolation in the console: an officer never sees another caseload's alert, zone or
//! position, neither while it is raised as they watch nor after logging in where another
//! officer logged out.

use crate::support::browser::{js_string, visible_js, Browser};
use crate::support::monitored::Monitored;
use crate::{
    alert_selector, enter_zone, listed_alerts, log_in, open_console, screenshot, seen_alerts,
    wait_first_alert, watch_alerts, System, QUIET, SOON,
};

#[tokio::test]
async fn an_officer_never_sees_another_caseloads_alert() {
    let system = System::start().await;
    let li = system.officer("Officer Li").await;
    let wang = system.officer("Officer Wang").await;
    let lis_person = system.supervisee(&li).await;
    let wangs_person = system.supervisee(&wang).await;
    let browser = Browser::start().await;
    let url = system.console_url();
    let (li_page, wang_page) =
        tokio::join!(open_console(&browser, &url), open_console(&browser, &url));
    tokio::join!(log_in(&li_page, &li), log_in(&wang_page, &wang));
    tokio::join!(watch_alerts(&li_page), watch_alerts(&wang_page));

    // Li's supervisee enters their zone while both watch: only Li sees it.
    let mut lis_device = lis_person.device(&system.app.ws_base()).await;
    enter_zone(&mut lis_device).await;
    let (lis_alert, _) = wait_first_alert(&li_page, "Li's alert on Li's console").await;
    assert_eq!(system.alert_ids(&li).await, vec![lis_alert.clone()]);
    tokio::time::sleep(QUIET).await;
    let leaked = seen_alerts(&wang_page).await;
    assert!(leaked.is_empty(), "Wang's console showed {leaked:?}");
    assert_eq!(listed_alerts(&wang_page).await, Vec::<String>::new());

    // Wang's own supervisee: Wang sees that one, and Li still only theirs.
    let mut wangs_device = wangs_person.device(&system.app.ws_base()).await;
    enter_zone(&mut wangs_device).await;
    let (wangs_alert, _) = wait_first_alert(&wang_page, "Wang's alert on Wang's console").await;
    assert_eq!(system.alert_ids(&wang).await, vec![wangs_alert.clone()]);
    assert_ne!(lis_alert, wangs_alert);
    tokio::time::sleep(QUIET).await;
    let shown_to_li: Vec<String> = seen_alerts(&li_page).await.keys().cloned().collect();
    assert_eq!(
        shown_to_li,
        vec![lis_alert.clone()],
        "Li's console showed another alert"
    );
    assert_eq!(listed_alerts(&li_page).await, vec![lis_alert.clone()]);
    assert_eq!(listed_alerts(&wang_page).await, vec![wangs_alert.clone()]);

    // Neither map draws the other caseload's zone or position.
    for (page, own, other) in [
        (&li_page, &lis_person, &wangs_person),
        (&wang_page, &wangs_person, &lis_person),
    ] {
        let position = |m: &Monitored| {
            format!(
                "svg#map circle.position[data-supervisee-id={}]",
                js_string(&m.supervisee_id)
            )
        };
        page.wait_for(
            &visible_js(&position(own)),
            SOON,
            "the own supervisee's position",
        )
        .await
        .expect("own position drawn");
        assert_eq!(page.count(&position(other)).await.unwrap(), 0);
        let zone = format!(
            "svg#map path.zone[data-zone-id={}]",
            js_string(&other.zone_ids[0])
        );
        assert_eq!(
            page.count(&zone).await.unwrap(),
            0,
            "another caseload's zone drawn"
        );
        let html = page
            .eval("document.documentElement.outerHTML")
            .await
            .unwrap();
        let html = html.as_str().unwrap_or_default();
        assert!(
            !html.contains(&other.supervisee_id),
            "the page holds another caseload's supervisee"
        );
    }
    screenshot(&wang_page, "console-isolation.png").await;

    // Li logs out and Wang logs in on the same page: only Wang's alert, nothing of Li's left.
    li_page
        .click("button#logout")
        .await
        .expect("logout clicked");
    li_page
        .wait_for(
            &format!(
                "{} && !({})",
                visible_js("form#login-form"),
                visible_js("#console")
            ),
            SOON,
            "the login form after logging out",
        )
        .await
        .expect("logged out");
    log_in(&li_page, &wang).await;
    li_page
        .wait_for(
            &format!(
                "document.querySelector({})",
                js_string(&alert_selector(&wangs_alert))
            ),
            SOON,
            "Wang's alert after Wang logged in where Li was",
        )
        .await
        .expect("Wang's alert listed");
    tokio::time::sleep(QUIET).await;
    assert_eq!(listed_alerts(&li_page).await, vec![wangs_alert.clone()]);
    let html = li_page
        .eval("document.documentElement.outerHTML")
        .await
        .unwrap();
    assert!(
        !html
            .as_str()
            .unwrap_or_default()
            .contains(&lis_person.supervisee_id),
        "Li's caseload is still on the page after Wang logged in"
    );

    li_page.assert_no_errors("on the page Li then Wang used");
    wang_page.assert_no_errors("on Wang's page");
}
